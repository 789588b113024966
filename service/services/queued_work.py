"""Cutouts and renders done by `python -m service.worker` processes, as jobs on the queue (TESS_SERVICE_WORK_QUEUE).

A replica's cutout job (`CutoutService.start`) then enqueues the download under the cutout's cache key and follows
it: many replicas asking for one cutout join one queued job. A product's job (`CutoutProducts`) waits for its
cutout that way, then enqueues the render under the product's key. A worker runs it as it would run locally (its own
`CutoutService`, TESScut behind the shared gate), and the cutout reaches the replicas through the shared cache
tier; the job's result is only what went wrong, if anything. A failure the job answers with (TESScut's 404 or
503, say) crosses the queue as its error class and fields and is raised again in the replica, so clients get
the same problem document as without a queue.
"""

from __future__ import annotations

import asyncio
import base64
import pickle
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from service import errors
from service.errors import CoordinationUnavailable, ServiceError, WorkInterrupted
from service.infra.work_queue import TOUCH_EVERY_S, Progress, QueuedJobFailed, QueueUnavailable, WorkQueue
from service.services.cutout_plans import CutoutPlan, plan_as_json, plan_from_json
from service.services.jobs import Job

if TYPE_CHECKING:
    from service.services.cutouts import CutoutService

CUTOUT_FUNCTION = "cutout"
RENDER_FUNCTION = "render"
Touch = Callable[[int], Awaitable[None]]
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
    """The replica's side: enqueue a cutout's download or a product's render, follow it, raise what it failed with."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue

    async def fetch(self, plan: CutoutPlan, job: Job) -> None:
        """Have a worker put ``plan``'s cutout in the shared cache; ``job`` shows its progress meanwhile."""
        await self._follow(CUTOUT_FUNCTION, plan.fits_key, {"plan": plan_as_json(plan)}, job, track_bytes=True)

    async def render(self, key: str, product: str, plan: CutoutPlan, params: object, cutout_url: str, job: Job) -> None:
        """Have a worker make ``product`` (its cutout already cached) and put it in the shared cache under ``key``."""
        kwargs = {
            "product": product,
            "plan": plan_as_json(plan),
            "params": params_as_text(params),
            "cutout_url": cutout_url,
        }
        await self._follow(RENDER_FUNCTION, key, kwargs, job, track_bytes=False)

    async def _follow(self, function: str, key: str, kwargs: dict[str, Any], job: Job, *, track_bytes: bool) -> None:
        received = 0

        def on_bytes(count: int) -> None:
            nonlocal received
            received = max(received, count)

        if track_bytes:
            job.progress = lambda: received
        try:
            result = await self._queue.run(
                function, key, kwargs, Progress(on_start=lambda: job.mark("running"), on_bytes=on_bytes)
            )
        except QueueUnavailable as error:
            raise CoordinationUnavailable(
                f"This work is done by the service's workers, and the job queue cannot be reached ({error}). "
                "Try again shortly.",
                retry_after_s=RETRY_AFTER_S,
            ) from error
        except QueuedJobFailed as error:
            raise WorkInterrupted(
                f"The workers doing this stopped before it was done ({error}); nothing partial was kept. "
                "Ask again: the work starts afresh.",
                retry_after_s=RETRY_AFTER_S,
            ) from error
        if "error" in result:
            raise error_from_json(result["error"])


def params_as_text(params: object) -> str:
    """Return a product's parameters as text for a queued job (pickled: only the service's processes read it)."""
    return base64.b64encode(pickle.dumps(params)).decode("ascii")


def params_from_text(text: str) -> Any:
    """Return the parameters `params_as_text` wrote."""
    return pickle.loads(base64.b64decode(text))  # noqa: S301 - written by a replica of this service


async def run_here(task: asyncio.Future[None], received: Callable[[], int], touch: Touch) -> dict[str, Any]:
    """Run a queued job's work in the worker, calling ``touch(bytes)`` every second meanwhile.

    Returns ``{"bytes_received": n}``, or ``{"error": ...}`` when the work failed with a problem. A crash (a bug)
    is raised, and the queue runs the job again.
    """
    while not task.done():
        await asyncio.wait({task}, timeout=TOUCH_EVERY_S)
        await touch(received())
    try:
        task.result()
    except ServiceError as error:
        return {"error": error_as_json(error)}
    return {"bytes_received": received()}


async def run_cutout(cutouts: CutoutService, plan_values: dict[str, Any], touch: Touch) -> dict[str, Any]:
    """Download a queued cutout in the worker, as a local job (joined by the worker's own renders that need it)."""
    job = cutouts.start(plan_from_json(plan_values), result_url="")
    assert job.task is not None

    async def ended() -> None:
        await asyncio.shield(job.task)  # type: ignore[arg-type]
        if job.error is not None:
            raise job.error

    return await run_here(asyncio.ensure_future(ended()), job.received, touch)
