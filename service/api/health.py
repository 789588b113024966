"""Liveness (/health) and readiness (/ready)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from service import __version__
from service.deps import ServicesDep
from service.infra.problem_json import Problem, problem_response
from service.schemas import EXAMPLE_READY_CHECKS, Health, Ready

router = APIRouter(tags=["operations"])
HEALTH_PATH = "/health"
READY_PATH = "/ready"
CACHE_RETRY_AFTER_S = 5

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
        *EXAMPLE_READY_CHECKS[4:],
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
async def ready(services: ServicesDep) -> Response:
    """Return 200 (ready or degraded) while the cache is writable, else a 503 problem listing the checks."""
    readiness = await services.readiness.check()
    if readiness.serving:
        return Response(
            Ready(status=readiness.status, checks=readiness.checks).model_dump_json(),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
    body = Problem(
        status=503,
        title="Not ready",
        slug="not-ready",
        detail=f"Not ready: the cache fails ({readiness.cache.detail}).",
        retryable=True,
        retry_after_s=CACHE_RETRY_AFTER_S,
        extensions={"checks": [check.model_dump() for check in readiness.checks]},
    ).body(READY_PATH)
    return problem_response(body)
