"""Every error answered as RFC 9457 ``application/problem+json``: the handlers the app installs.

`ServiceError`s take their status from the table in `service.problem_documents`; request validation errors answer
as `InvalidRequest`, an unknown route as `NotFound`, other HTTP errors with their own status.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from service.errors import InvalidRequest, NotFound, ServiceError
from service.infra.observability import REQUEST_ID_HEADER, current_request_id
from service.infra.problem_json import Problem, problem_response
from service.problem_documents import error_body, status_of

# The logger keeps the name it had when the handlers lived in service/errors.py: log filters and alerts use it.
log = logging.getLogger("service.errors")


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    status = status_of(exc)
    if status >= 500:
        log.warning("%s %s -> %d %s", request.method, request.url.path, status, exc.detail)
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
        Problem(
            status=status_of(InvalidRequest),
            title=InvalidRequest.title,
            slug=InvalidRequest.slug,
            detail=detail,
            extensions={"errors": errors},
        ).body(request.url.path)
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status_of(NotFound):
        # One problem type for every 404: an unknown route is not found just as an unknown TIC is.
        title, slug = NotFound.title, NotFound.slug
        detail = f"There is no route {request.url.path}; see /docs for the API."
    else:
        title, slug, detail = str(exc.detail), f"http-{exc.status_code}", str(exc.detail)
    response = problem_response(
        Problem(status=exc.status_code, title=title, slug=slug, detail=detail).body(request.url.path)
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    response = problem_response(
        Problem(
            status=status_of(ServiceError),
            title=ServiceError.title,
            slug=ServiceError.slug,
            detail="The service failed unexpectedly; this is a bug on our side and has been logged.",
        ).body(request.url.path)
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
