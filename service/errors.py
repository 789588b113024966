"""The service's error tree and its rendering as RFC 9457 ``application/problem+json``.

ServiceError (500)
├── NotFound (404)            unknown TIC, TCE or route
├── Conflict (409)            a short TCE id that matches several TCEs
├── NotAcceptable (406)       an Accept header we cannot satisfy
├── InvalidRequest (422)      bad parameters, request validation included
├── InsufficientStorage (507) a result larger than the cache may hold
├── Overloaded (503)          a work pool's queue is full: new work is refused at once, with Retry-After
├── ServiceRestarting (503)   a job the service stopped at shutdown; asking again starts it afresh
└── UpstreamError (502)       MAST misbehaved; `retryable` says whether trying again can help
    ├── BadUpstreamResponse (502)
    ├── UpstreamUnavailable (503)
    └── UpstreamTimeout (504)
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from service.infra.observability import REQUEST_ID_HEADER, current_request_id
from service.infra.problem_json import PROBLEM_MEDIA_TYPE, problem_body

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of every error the service answers with a problem document."""

    status = 500
    title = "Internal server error"
    slug = "internal-error"
    retryable = False

    def __init__(
        self,
        detail: str,
        *,
        retry_after_s: int | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.extensions = extensions or {}


class NotFound(ServiceError):
    """The TIC, TCE or route does not exist."""

    status, title, slug = 404, "Not found", "not-found"


class Conflict(ServiceError):
    """The request is ambiguous; the extensions list the candidates."""

    status, title, slug = 409, "Ambiguous request", "ambiguous"


class NotAcceptable(ServiceError):
    """No representation matches the Accept header."""

    status, title, slug = 406, "Not acceptable", "not-acceptable"


class InvalidRequest(ServiceError):
    """A parameter is malformed or out of range."""

    status, title, slug = 422, "Invalid request", "invalid-request"


class InsufficientStorage(ServiceError):
    """The result cannot be kept in the cache (it is larger than the cache allows)."""

    status, title, slug = 507, "Insufficient storage", "insufficient-storage"


class Overloaded(ServiceError):
    """A work pool (cutouts, rendering) is full; identical running work and cached answers are still served."""

    status, title, slug = 503, "Service overloaded", "overloaded"
    retryable = True

    def __init__(self, detail: str, *, pool: str, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, extensions={"pool": pool})


class ServiceRestarting(ServiceError):
    """The service shut down while a job ran; nothing partial was kept, so the next request starts afresh."""

    status, title, slug = 503, "Service restarting", "service-restarting"
    retryable = True


class UpstreamError(ServiceError):
    """MAST did not give a usable answer."""

    status, title, slug = 502, "Bad upstream response", "bad-upstream-response"
    retryable = True

    def __init__(self, detail: str, *, upstream: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, extensions={"upstream": upstream})


class BadUpstreamResponse(UpstreamError):
    """MAST answered, but with an error status or a body we cannot use."""


class UpstreamUnavailable(UpstreamError):
    """MAST could not be reached or said it is overloaded."""

    status, title, slug = 503, "Upstream unavailable", "upstream-unavailable"


class UpstreamTimeout(UpstreamError):
    """MAST did not answer in time."""

    status, title, slug = 504, "Upstream timeout", "upstream-timeout"


def error_body(exc: ServiceError, instance: str) -> dict[str, Any]:
    """Return the problem document of a `ServiceError`."""
    return problem_body(
        instance,
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        slug=exc.slug,
        retryable=exc.retryable,
        retry_after_s=exc.retry_after_s,
        extensions=exc.extensions,
    )


def problem_response(body: dict[str, Any]) -> Response:
    """Send a problem document as ``application/problem+json``; errors are never cached by anyone."""
    headers = {"Cache-Control": "no-store"}
    if body.get("retry_after_s") is not None:
        headers["Retry-After"] = str(body["retry_after_s"])
    return Response(orjson.dumps(body), status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    if exc.status >= 500:
        log.warning("%s %s -> %d %s", request.method, request.url.path, exc.status, exc.detail)
    return problem_response(error_body(exc, request.url.path))


def _describe_location(loc: tuple[int | str, ...]) -> str:
    where = {"path": "path parameter", "query": "query parameter", "header": "header", "body": "body"}
    if len(loc) >= 2 and isinstance(loc[0], str) and loc[0] in where:
        return f"{where[loc[0]]} '{'.'.join(str(part) for part in loc[1:])}'"
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"location": _describe_location(tuple(err["loc"])), "message": err["msg"]} for err in exc.errors()]
    detail = "; ".join(f"{err['location']}: {err['message']}" for err in errors)
    return problem_response(
        problem_body(
            request.url.path,
            status=422,
            title=InvalidRequest.title,
            detail=detail,
            slug=InvalidRequest.slug,
            extensions={"errors": errors},
        )
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        detail = f"There is no route {request.url.path}; see /docs for the API."
    else:
        detail = str(exc.detail)
    response = problem_response(
        problem_body(
            request.url.path,
            status=exc.status_code,
            title=str(exc.detail),
            detail=detail,
            slug=f"http-{exc.status_code}",
        )
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    response = problem_response(
        problem_body(
            request.url.path,
            status=500,
            title=ServiceError.title,
            detail="The service failed unexpectedly; this is a bug on our side and has been logged.",
            slug=ServiceError.slug,
        )
    )
    # Starlette answers unhandled errors outside every middleware, so the request id middleware cannot add this.
    request_id = current_request_id()
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, from validation to upstream failures, a problem+json answer."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
