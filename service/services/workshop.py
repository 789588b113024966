"""What the services that answer slow work share, built once in the lifespan and handed over as one."""

from __future__ import annotations

from dataclasses import dataclass

from service.infra.cache import DiskCache
from service.infra.threads import Limiters
from service.services.answers import SlowAnswers
from service.services.artifacts import ArtifactStore
from service.services.jobs import JobRegistry


@dataclass(frozen=True)
class Workshop:
    """The tools of every service that makes products.

    The cache (as artifacts with single-flight, and raw for files read in place), the jobs, how slow answers are
    given, and the thread limiters.
    """

    store: ArtifactStore
    cache: DiskCache
    jobs: JobRegistry
    answers: SlowAnswers
    limiters: Limiters
