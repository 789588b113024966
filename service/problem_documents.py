"""How HTTP answers each `ServiceError`: its status and its problem document.

The status comes from one table, as in titiler's ``DEFAULT_STATUS_CODES``: the error tree (`service.errors`) knows
no HTTP, and this is the one place that does. It sits below the API so that the layers which report a status
without answering one read the same table: the services' ``X-Stale-Reason`` ("TESScut failed (503 ...)") and the
upstream metrics' ``outcome`` label. Errors defined elsewhere (the TESScut mirror's) register with `answered_with`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from service.errors import (
    BadUpstreamResponse,
    CircuitOpen,
    Conflict,
    CoordinationUnavailable,
    InsufficientStorage,
    InvalidRequest,
    NotAcceptable,
    NotFound,
    Overloaded,
    ServiceError,
    ServiceRestarting,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    WorkInterrupted,
)
from service.infra.problem_json import Problem

E = TypeVar("E", bound=type[ServiceError])

# A class not listed answers with its nearest listed ancestor's status (`status_of` walks the MRO).
STATUS_CODES: dict[type[ServiceError], int] = {
    ServiceError: 500,
    NotFound: 404,
    Conflict: 409,
    NotAcceptable: 406,
    InvalidRequest: 422,
    InsufficientStorage: 507,
    Overloaded: 503,
    ServiceRestarting: 503,
    CoordinationUnavailable: 503,
    WorkInterrupted: 503,
    UpstreamError: 502,
    BadUpstreamResponse: 502,
    UpstreamUnavailable: 503,
    CircuitOpen: 503,
    UpstreamTimeout: 504,
}


def answered_with(status: int) -> Callable[[E], E]:
    """Return a class decorator that enters an error class defined outside `service.errors` in the table."""

    def register(error_class: E) -> E:
        STATUS_CODES[error_class] = status
        return error_class

    return register


def status_of(error: ServiceError | type[ServiceError]) -> int:
    """Return the HTTP status an error (or error class) is answered with: its nearest class in the table."""
    error_class = error if isinstance(error, type) else type(error)
    for ancestor in error_class.__mro__:
        if issubclass(ancestor, ServiceError) and ancestor in STATUS_CODES:
            return STATUS_CODES[ancestor]
    return STATUS_CODES[ServiceError]


def error_body(error: ServiceError, instance: str) -> dict[str, Any]:
    """Return the problem document of ``error`` (also embedded in failed jobs)."""
    return Problem(
        status=status_of(error),
        title=error.title,
        slug=error.slug,
        detail=error.detail,
        retryable=error.retryable,
        retry_after_s=error.retry_after_s,
        extensions=error.extensions,
    ).body(instance)
