"""The API edge of every product: an `Answer` becomes 200 / 304 from the cache, or 202 + ``Location``."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.infra.http_cache import cached_response
from service.infra.threads import Limiters
from service.services.answers import Accepted, Answer, Found, Served
from service.services.jobs import Job

# How soon a client should poll a job: TESScut work takes seconds at least.
POLL_AFTER_S = 2


def then_url(request: Request) -> str:
    """Return the request's own path and query without ``wait``: where its finished result will be served."""
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


def respond(request: Request, answer: Answer | Found, limiters: Limiters) -> Response:
    """Answer ``request``: a served body (200, or 304 when the client's copy is current) or 202 for a job."""
    if isinstance(answer, Accepted):
        return accepted(answer.job, answer.then)
    served = answer if isinstance(answer, Served) else Served(answer)
    policy = served.policy
    return cached_response(
        request,
        served.found.body,
        hit=served.found.hit,
        limiters=limiters,
        immutable=policy.immutable,
        vary=policy.vary,
        max_age_cap_s=policy.max_age_cap_s,
    )
