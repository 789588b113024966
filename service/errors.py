"""The service's errors, as the domain sees them: what went wrong, for whom, and whether trying again can help.

No HTTP here: `service.problem_documents` maps each class to its status (one table) and its problem document, and
`service.api.errors` answers them as ``application/problem+json``.

ServiceError                    a bug or a local failure (the disk, a crashed job)
├── NotFound                    unknown TIC, TCE or route
├── Conflict                    a short TCE id that matches several TCEs
├── NotAcceptable               an Accept header we cannot satisfy
├── InvalidRequest              bad parameters, request validation included
├── InsufficientStorage         a result larger than the cache may hold
├── Overloaded                  a work pool's queue is full: new work is refused at once, with Retry-After
├── ServiceRestarting           a job the service stopped at shutdown; asking again starts it afresh
├── CoordinationUnavailable     the Redis replicas share cannot be reached
├── WorkInterrupted             a queued job whose workers all died or crashed; asking again starts it afresh
├── TesscutBadRequest *         a parameter TESScut would reject (its ``msg`` too)
├── FormTooLarge *              a POST body larger than any TESScut form
├── MovingTargetsNotSupported * moving-target cutouts, not mirrored
└── UpstreamError               MAST misbehaved; `retryable` says whether trying again can help
    ├── BadUpstreamResponse     MAST answered with an error status or a body we cannot use
    ├── UpstreamUnavailable     MAST could not be reached or said it is overloaded
    │   └── CircuitOpen         the upstream's breaker is open: refused without asking MAST
    └── UpstreamTimeout         MAST did not answer in time

* The TESScut mirror's own refusals, answered TESScut-style; defined where they are raised, in
  service/api/tesscut_mirror/params.py.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ServiceError(Exception):
    """Base of every error the service answers with a problem document."""

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

    title, slug = "Not found", "not-found"


class Conflict(ServiceError):
    """The request is ambiguous; the extensions list the candidates."""

    title, slug = "Ambiguous request", "ambiguous"


class NotAcceptable(ServiceError):
    """No representation matches the Accept header."""

    title, slug = "Not acceptable", "not-acceptable"


class InvalidRequest(ServiceError):
    """A parameter is malformed or out of range."""

    title, slug = "Invalid request", "invalid-request"


class InsufficientStorage(ServiceError):
    """The result cannot be kept in the cache (it is larger than the cache allows)."""

    title, slug = "Insufficient storage", "insufficient-storage"


class Overloaded(ServiceError):
    """A work pool (cutouts, rendering) is full; identical running work and cached answers are still served."""

    title, slug = "Service overloaded", "overloaded"
    retryable = True

    def __init__(self, detail: str, *, pool: str, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, extensions={"pool": pool})


class ServiceRestarting(ServiceError):
    """The service shut down while a job ran; nothing partial was kept, so the next request starts afresh."""

    title, slug = "Service restarting", "service-restarting"
    retryable = True


class CoordinationUnavailable(ServiceError):
    """The Redis that replicas share cannot be reached, so what another replica holds cannot be looked up."""

    title, slug = "Coordination unavailable", "coordination-unavailable"
    retryable = True


class WorkInterrupted(ServiceError):
    """A queued job ran out of attempts: its workers were killed or crashed each time; nothing partial was kept."""

    title, slug = "Work interrupted", "work-interrupted"
    retryable = True


class UpstreamError(ServiceError):
    """MAST did not give a usable answer."""

    title, slug = "Bad upstream response", "bad-upstream-response"
    retryable = True

    def __init__(self, detail: str, *, upstream: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, extensions={"upstream": upstream})


class BadUpstreamResponse(UpstreamError):
    """MAST answered, but with an error status or a body we cannot use."""


class UpstreamUnavailable(UpstreamError):
    """MAST could not be reached or said it is overloaded."""

    title, slug = "Upstream unavailable", "upstream-unavailable"


class CircuitOpen(UpstreamUnavailable):
    """The upstream's circuit breaker is open: answered at once, without asking the upstream."""

    title, slug = "Upstream circuit open", "upstream-circuit-open"

    def __init__(self, detail: str, *, upstream: str, retry_after_s: int, state: Enum) -> None:
        super().__init__(detail, upstream=upstream, retry_after_s=retry_after_s)
        self.extensions["breaker"] = state.name.lower().replace("_", "-")


class UpstreamTimeout(UpstreamError):
    """MAST did not answer in time."""

    title, slug = "Upstream timeout", "upstream-timeout"
