"""Liveness (/health) and readiness (/ready)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from anyio import CapacityLimiter
from fastapi import APIRouter, Request
from starlette.responses import Response

from service import __version__
from service.api.errors import problem_response
from service.deps import ServicesDep
from service.infra.cache import DiskCache
from service.infra.problem_json import problem_body
from service.infra.threads import run_blocking
from service.schemas import EXAMPLE_READY_CHECKS, Health, Ready, ReadyCheck
from service.upstream.resilience import BreakerState

router = APIRouter(tags=["operations"])
HEALTH_PATH = "/health"
READY_PATH = "/ready"
# A cache that takes longer than this to write, read and delete a few bytes is not fit to serve.
CACHE_PROBE_TIMEOUT_S = 5.0
CACHE_RETRY_AFTER_S = 5
_PROBE_PAYLOAD = b"ready?"

_FAILING_CACHE_CHECK = {
    "name": "cache",
    "ok": False,
    "state": "failing",
    "detail": "OSError: [Errno 30] Read-only file system",
    "retry_after_s": None,
}
_NOT_READY_EXAMPLE: dict[str, Any] = {
    "type": "urn:tess-service:problem:not-ready",
    "title": "Not ready",
    "status": 503,
    "detail": "Not ready: the cache fails (OSError: [Errno 30] Read-only file system).",
    "instance": READY_PATH,
    "retryable": True,
    "retry_after_s": CACHE_RETRY_AFTER_S,
    "checks": [_FAILING_CACHE_CHECK, *EXAMPLE_READY_CHECKS[1:]],
}
_DEGRADED_EXAMPLE: dict[str, Any] = {
    "status": "degraded",
    "checks": [
        *EXAMPLE_READY_CHECKS[:3],
        {"name": "TESScut", "ok": False, "state": "open", "detail": None, "retry_after_s": 23},
    ],
}


@router.get(
    HEALTH_PATH,
    response_model=Health,
    summary="Liveness check",
    description="Answers 200 while the process can serve requests. It touches no upstream and no disk.",
)
async def health() -> Health:
    """Return that the process is up."""
    return Health(status="ok", version=__version__)


def _probe_cache(cache: DiskCache) -> None:
    """Write, read back and delete a small entry (blocking: runs in an I/O worker thread)."""
    key = f"ready-probe:{uuid.uuid4().hex}"  # its own key, so concurrent probes cannot disturb each other
    try:
        cache.put(key, _PROBE_PAYLOAD, media_type="application/octet-stream", ttl_s=60)
        entry = cache.get(key)
        if entry is None:
            raise OSError("the entry just written is not there")
        try:
            if entry.read() != _PROBE_PAYLOAD:
                raise OSError("the entry just written reads back different")
        finally:
            entry.close()
    finally:
        cache.delete(key)


def _probe_limiter(request: Request) -> CapacityLimiter:
    """Return this app's one thread for cache probes, apart from the I/O pool so heavy I/O cannot starve it."""
    limiter: CapacityLimiter | None = getattr(request.app.state, "ready_probe_limiter", None)
    if limiter is None:
        limiter = request.app.state.ready_probe_limiter = CapacityLimiter(1)
    return limiter


async def _cache_check(services: ServicesDep, limiter: CapacityLimiter) -> ReadyCheck:
    try:
        async with asyncio.timeout(CACHE_PROBE_TIMEOUT_S):
            # Abandoned on timeout: a stuck disk must not hold the answer; the stuck thread keeps the probe
            # limiter, so later polls also answer "failing" until the disk comes back.
            await run_blocking(_probe_cache, services.cache, limiter=limiter, abandon_on_cancel=True)
    except TimeoutError:
        detail = f"writing, reading and deleting a probe entry took over {CACHE_PROBE_TIMEOUT_S:g} s"
        return ReadyCheck(name="cache", ok=False, state="failing", detail=detail)
    except Exception as exc:  # noqa: BLE001 - whatever breaks the cache, the answer is "not ready" and why
        return ReadyCheck(name="cache", ok=False, state="failing", detail=f"{type(exc).__name__}: {exc}")
    return ReadyCheck(name="cache", ok=True, state="writable")


@router.get(
    READY_PATH,
    response_model=Ready,
    summary="Readiness check",
    description="Answers 200 while this instance can serve: its disk cache takes a write, a read and a delete (of "
    "a probe entry, in a thread of its own). `status` is `ready`, or `degraded` when an upstream's circuit breaker "
    "is open: cached and stale answers are still served then, and only calls that need that upstream are refused "
    "with 503, so a load balancer should keep sending traffic (every instance sees the same MAST outage). `checks` "
    "lists the cache and each upstream's breaker (`closed`, `open` or `half-open`). Otherwise, when the cache "
    "fails, 503 with `Retry-After` and a problem document whose `checks` list every check. MAST itself is not "
    "called: the breakers already say whether it has been failing, and a probe per readiness poll would only add "
    "load.",
    responses={
        200: {
            "description": "Ready (`status` 'ready'), or serving with an upstream's breaker open ('degraded').",
            "content": {
                "application/json": {
                    "examples": {
                        "ready": {"value": {"status": "ready", "checks": EXAMPLE_READY_CHECKS}},
                        "degraded": {"value": _DEGRADED_EXAMPLE},
                    }
                }
            },
        },
        503: {
            "description": "Not ready: the cache fails.",
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": _NOT_READY_EXAMPLE,
                }
            },
        },
    },
)
async def ready(services: ServicesDep, request: Request) -> Response:
    """Return 200 (ready or degraded) while the cache is writable, else a 503 problem listing the checks."""
    cache_check = await _cache_check(services, _probe_limiter(request))
    checks = [cache_check]
    for breaker in services.breakers:
        state = breaker.state
        is_open = state is BreakerState.OPEN
        checks.append(
            ReadyCheck(
                name=breaker.upstream,
                ok=not is_open,
                state=state.name.lower().replace("_", "-"),
                retry_after_s=breaker.retry_after_s() if is_open else None,
            )
        )
    if cache_check.ok:
        status = "ready" if all(check.ok for check in checks) else "degraded"
        return Response(
            Ready(status=status, checks=checks).model_dump_json(),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
    body = problem_body(
        READY_PATH,
        status=503,
        title="Not ready",
        detail=f"Not ready: the cache fails ({cache_check.detail}).",
        slug="not-ready",
        retryable=True,
        retry_after_s=CACHE_RETRY_AFTER_S,
        extensions={"checks": [check.model_dump() for check in checks]},
    )
    return problem_response(body)
