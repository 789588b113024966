"""Answering slow work: from the cache, or after waiting up to ``wait`` seconds for its job, or 202 + a job to poll."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.deps import Services
from service.infra.http_cache import cached_response
from service.services.artifacts import Ready
from service.services.jobs import Job

# How soon a client should poll a job: TESScut work takes seconds at least.
POLL_AFTER_S = 2


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


async def answer_from_cache_or_job(
    request: Request,
    services: Services,
    *,
    cached: Callable[[], Awaitable[Ready | None]],
    start: Callable[[], Job],
    finished: Callable[[Job], Awaitable[Ready]],
    wait_s: float | None,
    immutable: bool,
    vary: str | None = None,
    max_age_cap_s: int | None = None,
) -> Response:
    """Serve ``cached()``; on a miss start (or join) the job, wait up to ``wait_s`` for it, else answer 202.

    A job may be shared by requests for other representations of the same work, so each 202 carries this
    request's own URL (``then``); ``vary`` and ``max_age_cap_s`` pass to the cached answer.
    """
    ready = await cached()
    if ready is None:
        job = start()
        assert job.task is not None
        wait_s = services.settings.job_wait_default_s if wait_s is None else wait_s
        if wait_s > 0:
            # asyncio.wait never cancels the job: it keeps running when this request times out or goes away.
            await asyncio.wait({job.task}, timeout=wait_s)
        if job.status not in ("done", "failed"):
            return accepted(job, result_url(request))
        ready = await finished(job)
    return cached_response(
        request,
        ready.body,
        hit=ready.hit,
        limiters=services.limiters,
        immutable=immutable,
        vary=vary,
        max_age_cap_s=max_age_cap_s,
    )
