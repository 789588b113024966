"""Answering slow work: from the cache, or after waiting up to ``wait`` seconds for its job, or 202 + a job to poll.

``wait`` bounds the whole request, planning included. Planning (where the target is, which sector) usually comes
from the cache in milliseconds, and then a bad target is answered 404/422 at once; but it may need MAST (an
uncached TIC or sector lookup, behind a saturated TESScut), so the request waits for it no longer than ``wait``
(or `PLANNING_ALLOWANCE_S` when ``wait`` is shorter, time enough for cache reads). Planning that takes longer
carries on in a job: 202 at once, and a bad target is then the job's failure (its `problem` at /jobs/{id}).

Waiting goes through `JobRegistry.wait`: when the service is told to stop, a request still waiting is answered
503 `service-restarting` (with Retry-After) before the server's grace period runs out, not cut off unanswered.

Stale-if-error: an expired answer is made again by a job like a missing one. A request that waits for the job
and sees it fail upstream gets the expired copy, marked stale (``Work.finished``, e.g. `CutoutService.after_job`).
A request answered 202 does not: its job then ends failed, with TESScut's problem at /jobs/{id} (nothing new was
made), and asking for the result again (the 202's ``then``, which drops ``wait``) tries TESScut once more and
serves the expired copy if that fails within the request's wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.deps import Services
from service.infra.http_cache import cached_response
from service.infra.threads import Admission, handing_over
from service.services.artifacts import Ready
from service.services.jobs import Job

P = TypeVar("P")

# How soon a client should poll a job: TESScut work takes seconds at least.
POLL_AFTER_S = 2
# The least time given to planning, even with wait=0: enough to read a plan from the cache under load, far less
# than planning that has to queue for TESScut.
PLANNING_ALLOWANCE_S = 0.5


@dataclass(frozen=True)
class Work:
    """What answering one planned request takes: its cached answer, the job that makes it, the answer after it.

    ``starter`` may await (cache lookups); the function it returns must not, so that starting or joining the job
    (and the pool's admission) happens in one step.
    """

    cached: Callable[[], Awaitable[Ready | None]]
    starter: Callable[[], Awaitable[Callable[[], Job]]]
    finished: Callable[[Job], Awaitable[Ready]]
    immutable: bool
    vary: str | None = None
    max_age_cap_s: int | None = None


@dataclass(frozen=True)
class Planned(Generic[P]):
    """How to plan a request (``plan``, which may need MAST) and what its plan asks for (``work``)."""

    plan: Callable[[], Awaitable[P]]
    work: Callable[[P], Work]
    pool: Admission


def result_url(request: Request) -> str:
    """Return the request's own path and query without ``wait``: where the finished result will be served."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "wait"])
    return request.url.path + (f"?{query}" if query else "")


def accepted(job: Job, then: str) -> Response:
    """Answer 202 with the job, where to poll it and when, and (``then``) where this caller's result will be."""
    return Response(
        orjson.dumps({**job.as_json(), "then": then}),
        status_code=202,
        media_type="application/json",
        headers={"Location": f"/jobs/{job.id}", "Retry-After": str(POLL_AFTER_S), "Cache-Control": "no-store"},
    )


def _retrieve(task: asyncio.Task[object]) -> None:
    # Planning abandoned to a job may still fail on its own; its error is the job's to report, not the loop's.
    if not task.cancelled():
        task.exception()


async def answer_planned(request: Request, services: Services, planned: Planned[P], wait_s: float | None) -> Response:
    """Plan, then serve from the cache or a job, all within ``wait_s``; slow planning goes on in a job (202).

    Past the pool's bound a new job is refused at once (`Overloaded`, 503); cached answers and running work are
    still served.
    """
    wait_s = services.settings.job_wait_default_s if wait_s is None else wait_s
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    planning = asyncio.ensure_future(planned.plan())
    planning.add_done_callback(_retrieve)
    try:
        await services.jobs.wait(planning, max(wait_s, PLANNING_ALLOWANCE_S))
    finally:
        if not planning.done():
            # The job below plans again; the lookups it repeats are coalesced and cached, so little is lost.
            planning.cancel()
    if not planning.done() or planning.cancelled():
        services.jobs.raise_if_stopping()  # no new job for a service about to stop its jobs
        then = result_url(request)

        async def follow(job: Job) -> None:
            await _plan_and_follow(job, planned)

        job = services.jobs.start(f"planned:{then}", then, follow, pool=planned.pool)
        return accepted(job, then)
    work = planned.work(planning.result())  # a bad target's 404/422 is raised here, synchronously
    return await answer_from_cache_or_job(request, services, work, max(0.0, deadline - loop.time()))


async def _plan_and_follow(job: Job, planned: Planned[P]) -> None:
    """Plan, then start or join the real work and wait for it: the job of a request whose planning was slow.

    This job holds a place in the pool while planning; the work it starts takes that place over, and when it
    joins running work (or finds the answer cached) the place is given back.
    """
    work = planned.work(await planned.plan())
    ready = await work.cached()
    if ready is not None:
        ready.body.close()
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


async def answer_from_cache_or_job(request: Request, services: Services, work: Work, wait_s: float) -> Response:
    """Serve ``work.cached()``; on a miss start (or join) the job, wait up to ``wait_s`` for it, else answer 202.

    A job may be shared by requests for other representations of the same work, so each 202 carries this
    request's own URL (``then``).
    """
    ready = await work.cached()
    if ready is None:
        start = await work.starter()
        job = start()
        assert job.task is not None
        if wait_s > 0:
            # The wait never cancels the job: it keeps running when this request times out or goes away.
            await services.jobs.wait(job.task, wait_s)
        if job.status not in ("done", "failed"):
            # Stopping: a 202 would point at a job about to be stopped and forgotten.
            services.jobs.raise_if_stopping()
            return accepted(job, result_url(request))
        ready = await work.finished(job)
    return cached_response(
        request,
        ready.body,
        hit=ready.hit,
        limiters=services.limiters,
        immutable=work.immutable,
        vary=work.vary,
        max_age_cap_s=work.max_age_cap_s,
    )
