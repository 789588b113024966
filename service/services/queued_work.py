"""Cutouts downloaded by `python -m service.worker` processes, as jobs on the queue (TESS_SERVICE_WORK_QUEUE).

A replica's cutout job (`CutoutService.start`) then enqueues the download under the cutout's cache key and follows
it: many replicas asking for one cutout join one queued job. A worker runs it as it would run locally (its own
`CutoutService`, TESScut behind the shared gate), and the cutout reaches the replicas through the shared cache
tier; the job's result is only what went wrong, if anything. A failure the job answers with (TESScut's 404 or
503, say) crosses the queue as its error class and fields and is raised again in the replica, so clients get
the same problem document as without a queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from service import errors
from service.errors import CoordinationUnavailable, ServiceError, WorkInterrupted
from service.infra.work_queue import TOUCH_EVERY_S, Progress, QueuedJobFailed, QueueUnavailable, WorkQueue
from service.services.cutout_plans import CutoutPlan, plan_as_json, plan_from_json
from service.services.jobs import Job

if TYPE_CHECKING:
    from service.services.cutouts import CutoutService

log = logging.getLogger(__name__)

CUTOUT_FUNCTION = "cutout"
RETRY_AFTER_S = 5


def error_as_json(error: ServiceError) -> dict[str, Any]:
    """Return what `error_from_json` needs to raise ``error`` again in another process."""
    return {
        "class": type(error).__name__,
        "detail": error.detail,
        "retry_after_s": error.retry_after_s,
        "extensions": error.extensions,
    }


def error_from_json(values: dict[str, Any]) -> ServiceError:
    """Return the error `error_as_json` described: its class (a plain `ServiceError` if unknown) and fields."""
    found = getattr(errors, str(values.get("class")), None)
    error_class = found if isinstance(found, type) and issubclass(found, ServiceError) else ServiceError
    # The fields are set as `ServiceError` sets them; subclasses' constructors only compute extensions.
    error = error_class.__new__(error_class)
    ServiceError.__init__(
        error,
        str(values.get("detail", "")),
        retry_after_s=values.get("retry_after_s"),
        extensions=dict(values.get("extensions") or {}),
    )
    return error


class QueuedCutouts:
    """The replica's side: enqueue a cutout's download, follow it, and raise what it failed with."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue

    async def fetch(self, plan: CutoutPlan, job: Job) -> None:
        """Have a worker put ``plan``'s cutout in the shared cache; ``job`` shows its progress meanwhile."""
        received = 0

        def on_bytes(count: int) -> None:
            nonlocal received
            received = max(received, count)

        job.progress = lambda: received
        try:
            result = await self._queue.run(
                CUTOUT_FUNCTION,
                plan.fits_key,
                {"plan": plan_as_json(plan)},
                Progress(on_start=lambda: job.mark("running"), on_bytes=on_bytes),
            )
        except QueueUnavailable as error:
            raise CoordinationUnavailable(
                f"The cutout is made by the service's workers, and the job queue cannot be reached ({error}). "
                "Try again shortly.",
                retry_after_s=RETRY_AFTER_S,
            ) from error
        except QueuedJobFailed as error:
            raise WorkInterrupted(
                f"The workers making this cutout stopped before it was done ({error}); nothing partial was kept. "
                "Ask again: the work starts afresh.",
                retry_after_s=RETRY_AFTER_S,
            ) from error
        if "error" in result:
            raise error_from_json(result["error"])


async def run_cutout(
    cutouts: CutoutService, plan_values: dict[str, Any], touch: Callable[[int], Awaitable[None]]
) -> dict[str, Any]:
    """Download the cutout in the worker, as a local job, calling ``touch(bytes)`` every second meanwhile.

    Returns ``{"bytes_received": n}``, or ``{"error": ...}`` when the job failed with a problem. A crash (a bug)
    is raised, and the queue runs the job again.
    """
    job = cutouts.start(plan_from_json(plan_values), result_url="")
    task = job.task
    assert task is not None
    while not task.done():
        await asyncio.wait({task}, timeout=TOUCH_EVERY_S)
        await touch(job.received())
    if job.error is not None:
        return {"error": error_as_json(job.error)}
    return {"bytes_received": job.received()}
