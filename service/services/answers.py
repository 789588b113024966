"""What a product request is answered with, and the flow for slow products: cache, wait for a job, or 202.

``wait`` bounds the whole request, planning included. Planning (where the target is, which sector) usually comes
from the cache in milliseconds, and then a bad target is answered 404/422 at once; but it may need MAST (an
uncached TIC or sector lookup, behind a saturated TESScut), so the request waits for it no longer than ``wait``
(or `PLANNING_ALLOWANCE_S` when ``wait`` is shorter, time enough for cache reads). Planning that takes longer
carries on in a job: `Accepted` at once, and a bad target is then the job's failure (its problem at /jobs/{id}).

Waiting goes through `JobRegistry.wait`: when the service is told to stop, a request still waiting is answered
503 `service-restarting` (with Retry-After) before the server's grace period runs out, not cut off unanswered.

Stale-if-error: an expired answer is made again by a job like a missing one. A request that waits for the job
and sees it fail upstream gets the expired copy, marked stale (``SlowWork.finished``, e.g.
`CutoutService.after_job`). A request answered 202 does not: its job then ends failed, with TESScut's problem at
/jobs/{id} (nothing new was made), and asking for the result again (the 202's ``then``, which drops ``wait``)
tries TESScut once more and serves the expired copy if that fails within the request's wait.

The API edge turns an `Answer` into HTTP (200/304 from the cache, or 202 + ``Location``); nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from service.infra.cache import CachedBody
from service.infra.threads import Admission, handing_over
from service.services.jobs import Job, JobRegistry

P = TypeVar("P")

# The least time given to planning, even with wait=0: enough to read a plan from the cache under load, far less
# than planning that has to queue for TESScut.
PLANNING_ALLOWANCE_S = 0.5


@dataclass(frozen=True)
class CachePolicy:
    """How clients may keep an answer.

    ``immutable`` for sector-pinned work, ``vary`` when negotiated by a header, ``max_age_cap_s`` when the answer
    depends on something fresher than its entry (e.g. "the latest sector").
    """

    immutable: bool = False
    vary: str | None = None
    max_age_cap_s: int | None = None


@dataclass(frozen=True)
class Found:
    """A cached body, and whether this request found it there (``X-Cache: HIT``)."""

    body: CachedBody
    hit: bool


@dataclass(frozen=True)
class Served:
    """The answer is in the cache: its body and how clients may keep it."""

    found: Found
    policy: CachePolicy = CachePolicy()


@dataclass(frozen=True)
class Accepted:
    """The answer is still being made by ``job``; ``then`` is where this caller's result will be served."""

    job: Job
    then: str


Answer = Served | Accepted


@dataclass(frozen=True)
class SlowWork:
    """What answering one planned request takes: its cached answer, the job that makes it, the answer after it.

    ``starter`` may await (cache lookups); the function it returns must not, so that starting or joining the job
    (and the pool's admission) happens in one step.
    """

    cached: Callable[[], Awaitable[Found | None]]
    starter: Callable[[], Awaitable[Callable[[], Job]]]
    finished: Callable[[Job], Awaitable[Found]]
    policy: CachePolicy


@dataclass(frozen=True)
class Planned(Generic[P]):
    """How to plan a request (``plan``, which may need MAST) and what its plan asks for (``work``)."""

    plan: Callable[[], Awaitable[P]]
    work: Callable[[P], SlowWork]
    pool: Admission


def _retrieve(task: asyncio.Task[object]) -> None:
    # Planning abandoned to a job may still fail on its own; its error is the job's to report, not the loop's.
    if not task.cancelled():
        task.exception()


class SlowAnswers:
    """Answers planned, slow products within a request's ``wait``: from the cache, after their job, or `Accepted`."""

    def __init__(self, jobs: JobRegistry, *, default_wait_s: float) -> None:
        self._jobs = jobs
        self._default_wait_s = default_wait_s

    async def answer(self, planned: Planned[P], wait_s: float | None, then: str) -> Answer:
        """Plan, then answer from the cache or a job, all within ``wait_s``; slow planning goes on in a job.

        ``then`` is the request's own URL without ``wait``: where the finished result is served. Past the pool's
        bound a new job is refused at once (`Overloaded`); cached answers and running work are still served.
        """
        wait_s = self._default_wait_s if wait_s is None else wait_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        planning = asyncio.ensure_future(planned.plan())
        planning.add_done_callback(_retrieve)
        try:
            await self._jobs.wait(planning, max(wait_s, PLANNING_ALLOWANCE_S))
        finally:
            if not planning.done():
                # The job below plans again; the lookups it repeats are coalesced and cached, so little is lost.
                planning.cancel()
        if not planning.done() or planning.cancelled():
            self._jobs.raise_if_stopping()  # no new job for a service about to stop its jobs

            async def follow(job: Job) -> None:
                await _plan_and_follow(job, planned)

            job = self._jobs.start(f"planned:{then}", then, follow, pool=planned.pool)
            await self._jobs.announced(job)
            return Accepted(job, then)
        work = planned.work(planning.result())  # a bad target's 404/422 is raised here, synchronously
        return await self.from_cache_or_job(work, max(0.0, deadline - loop.time()), then)

    async def from_cache_or_job(self, work: SlowWork, wait_s: float, then: str) -> Answer:
        """Serve ``work.cached()``; on a miss start (or join) the job, wait up to ``wait_s`` for it, else `Accepted`.

        A job may be shared by requests for other representations of the same work, so each `Accepted` carries
        this request's own URL (``then``).
        """
        found = await work.cached()
        if found is None:
            start = await work.starter()
            job = start()
            assert job.task is not None
            if wait_s > 0:
                # The wait never cancels the job: it keeps running when this request times out or goes away.
                await self._jobs.wait(job.task, wait_s)
            if job.status not in ("done", "failed"):
                # Stopping: a 202 would point at a job about to be stopped and forgotten.
                self._jobs.raise_if_stopping()
                await self._jobs.announced(job)
                return Accepted(job, then)
            found = await work.finished(job)
        return Served(found, work.policy)


async def _plan_and_follow(job: Job, planned: Planned[P]) -> None:
    """Plan, then start or join the real work and wait for it: the job of a request whose planning was slow.

    This job holds a place in the pool while planning; the work it starts takes that place over, and when it
    joins running work (or finds the answer cached) the place is given back.
    """
    work = planned.work(await planned.plan())
    found = await work.cached()
    if found is not None:
        found.body.close()
        return
    start = await work.starter()
    with handing_over(job.ticket):
        inner = start()
    job.release_place()
    job.progress = inner.received
    job.mark("running")
    assert inner.task is not None
    # Shielded: the inner job may be shared with other requests; cancelling this one must not stop it.
    await asyncio.shield(inner.task)
    if inner.error is not None:
        raise inner.error
