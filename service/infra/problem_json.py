"""The ``application/problem+json`` document (RFC 9457), as every answer of ours that is an error is written.

Domain-free on purpose: the API edge fills it from a `ServiceError`, the header-size guard (`http_limits`) from
its own 431, before the app is ever reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

from service.infra.observability import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Problem:
    """What a problem document says, before it is known which request it answers."""

    status: int
    title: str
    slug: str  # the type is ``urn:tess-service:problem:{slug}``
    detail: str
    retryable: bool = False
    retry_after_s: int | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    def body(self, instance: str) -> dict[str, Any]:
        """Return the problem document answering ``instance`` (a path), with the request id when there is one."""
        body: dict[str, Any] = {
            "type": f"urn:tess-service:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            "retryable": self.retryable,
        }
        if self.retry_after_s is not None:
            body["retry_after_s"] = self.retry_after_s
        request_id = current_request_id()
        if request_id is not None:
            body["request_id"] = request_id
        body.update(self.extensions)
        return body


def problem_response(body: dict[str, Any]) -> Response:
    """Send a problem document as ``application/problem+json``; errors are never cached by anyone."""
    headers = {"Cache-Control": "no-store"}
    if body.get("retry_after_s") is not None:
        headers["Retry-After"] = str(body["retry_after_s"])
    return Response(orjson.dumps(body), status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers)
