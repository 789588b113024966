"""The ``application/problem+json`` document (RFC 9457), as every answer of ours that is an error is written.

Domain-free on purpose: the API edge fills it from a `ServiceError`, the header-size guard (`http_limits`) from
its own 431, before the app is ever reached.
"""

from __future__ import annotations

from typing import Any

from service.infra.observability import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_body(
    instance: str,
    *,
    status: int,
    title: str,
    detail: str,
    slug: str,
    retryable: bool = False,
    retry_after_s: int | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a problem document: its type is ``urn:tess-service:problem:{slug}``, the request id is added."""
    body: dict[str, Any] = {
        "type": f"urn:tess-service:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "retryable": retryable,
    }
    if retry_after_s is not None:
        body["retry_after_s"] = retry_after_s
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extensions or {})
    return body
