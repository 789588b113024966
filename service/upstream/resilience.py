"""Retries and circuit breakers for every call to MAST, with their metrics.

Which failures are retried, and which count towards opening an upstream's breaker:

| failure                                                    | retried | breaker |
| ---------------------------------------------------------- | ------- | ------- |
| HTTP 429, 502, 503, 504 (gateway pages, overload)          | yes     | counts  |
| connect refused or timed out, read timeout, out of time    | yes     | counts  |
| connection dropped, body cut short                         | yes     | counts  |
| HTTP 500 and other 5xx                                     | no      | counts  |
| 404, other 4xx, malformed JSON or zip, wrong content type  | no      | no      |
| our own side: connection pool full, no free slot in time, | no      | no      |
| a local disk error, nothing sent yet                        |         |         |

Transient failures are what a second try fixes: gateways and overload clear, a dropped keep-alive connection is
replaced. MAST's 500s come from the query itself (TESScut answers 500 to input it cannot handle) and repeat, so
retrying would only multiply the load; they still say the upstream is unwell. A bad body was answered whole by a
working upstream and is the same on every try: it neither retries nor counts, and like a 404 it shows the
upstream is up. Only idempotent requests go through here (GETs, the read-only catalog query, TESScut's GET-shaped
POSTs), so a retry can never do anything twice.

Retries wait with exponential backoff and full jitter (tenacity), at least as long as an upstream ``Retry-After``
asks, and never past the call's one overall deadline. The last error is answered at once when the wait would not
leave a useful slice of the deadline for the next attempt (`min_attempt_s`), or when the upstream asks for more than
`MAX_HONOURED_RETRY_AFTER_S`: holding the request (and every caller coalesced onto it) that long helps nobody, and
the client gets the upstream's ``Retry-After`` to decide for itself.

Calls that need a local slot first (TESScut's in-flight slots and start tokens) take it before the breaker admits
them, so a probe never waits in our own queue while every other caller is refused, and time spent queueing is never
mistaken for the upstream being slow.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import httpx
import requests
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_random_exponential

from service.errors import (
    BadUpstreamResponse,
    CircuitOpen,
    NotFound,
    Overloaded,
    ServiceError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from service.infra.metrics import (
    BREAKER_REJECTIONS,
    BREAKER_STATE,
    UPSTREAM_LATENCY,
    UPSTREAM_REQUESTS,
    UPSTREAM_RETRIES,
)
from service.problem_documents import status_of

if TYPE_CHECKING:  # annotations only: http imports nothing from here, and infra is a layer below
    from service.infra.threads import Limiters
    from service.upstream.http import Budget

T = TypeVar("T")
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# An upstream Retry-After up to this is waited for before retrying; a longer one is passed on to the client at once.
MAX_HONOURED_RETRY_AFTER_S = 5.0
# No attempt starts with less than this left of the deadline (or a tenth of the deadline, when that is shorter).
MIN_ATTEMPT_S = 1.0
# Retry-After when every local slot stayed busy until the deadline.
SLOT_RETRY_AFTER_S = 10


def min_attempt_s(deadline_s: float) -> float:
    """Return the least time an attempt must have left to be worth starting, for a call of ``deadline_s``."""
    return min(MIN_ATTEMPT_S, 0.1 * deadline_s)


class Failure(enum.Enum):
    """What one failed attempt says about the upstream."""

    TRANSIENT = "transient"  # retry it; counts towards the breaker
    DOWN = "down"  # do not retry; counts towards the breaker
    ANSWERED = "answered"  # the upstream answered (badly or 404): neither retried nor counted
    LOCAL = "local"  # our side (pool full, cancelled): says nothing about the upstream


def _status_failure(status: int) -> Failure:
    if status in RETRYABLE_STATUSES:
        return Failure.TRANSIENT
    return Failure.DOWN if status >= 500 else Failure.ANSWERED


def classify(exc: BaseException) -> Failure:
    """Classify a failed attempt by the transport error or HTTP status behind it (the ``__cause__``)."""
    if isinstance(exc, NotFound):
        return Failure.ANSWERED
    if not isinstance(exc, ServiceError):
        return Failure.LOCAL
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPStatusError | requests.HTTPError) and cause.response is not None:
        return _status_failure(cause.response.status_code)
    if isinstance(cause, httpx.PoolTimeout):
        return Failure.LOCAL
    if isinstance(cause, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError | TimeoutError):
        return Failure.TRANSIENT
    if isinstance(cause, requests.Timeout | requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return Failure.TRANSIENT
    if isinstance(exc, UpstreamUnavailable | UpstreamTimeout) and not isinstance(exc, CircuitOpen):
        return Failure.TRANSIENT
    return Failure.ANSWERED if isinstance(exc, BadUpstreamResponse) else Failure.LOCAL


def upstream_retry_after_s(exc: BaseException | None) -> float | None:
    """Return the ``Retry-After`` (seconds form) the upstream sent with this failure, if it sent one."""
    cause = exc.__cause__ if exc is not None else None
    if not isinstance(cause, httpx.HTTPStatusError | requests.HTTPError) or cause.response is None:
        return None
    value = (cause.response.headers.get("retry-after") or "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


class BreakerState(enum.IntEnum):
    """The breaker's states, numbered as the ``tess_upstream_breaker_state`` gauge shows them."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """A consecutive-failures breaker for one upstream, used from the event loop (so no lock).

    Closed: every attempt goes through; ``failure_threshold`` failures in a row open it. Open: attempts are refused
    until ``reset_s`` has passed. Then exactly one attempt, the probe, goes through (half-open) while the others
    are still refused; its success closes the breaker, its failure opens it for another ``reset_s``.
    """

    def __init__(
        self,
        upstream: str,
        *,
        failure_threshold: int,
        reset_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self._threshold = failure_threshold
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._probe_started_at = 0.0
        # How long an attempt that reached the upstream usually takes (moving average): the probe's expected time.
        self._typical_attempt_s = 1.0
        self._set_state(BreakerState.CLOSED)

    @property
    def state(self) -> BreakerState:
        """Return the current state; an open breaker whose probe is due reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock() >= self._opened_at + self._reset_s:
            return BreakerState.HALF_OPEN
        return self._state

    def retry_after_s(self) -> int:
        """Return whole seconds until the breaker may let a caller through (at least 1).

        Open: until the probe is due. Half-open with the probe under way: the probe's expected remaining time
        (how long attempts have lately taken, less what it has run), at most one reset period.
        """
        if self._state is BreakerState.OPEN:
            return max(1, math.ceil(self._opened_at + self._reset_s - self._clock()))
        if self._probing:
            left_s = self._typical_attempt_s - (self._clock() - self._probe_started_at)
            return max(1, min(math.ceil(left_s), math.ceil(self._reset_s)))
        return 1

    def check(self) -> None:
        """Raise `CircuitOpen` when `admit` would refuse an attempt now; take nothing (callers may then queue)."""
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.OPEN and self._clock() < self._opened_at + self._reset_s:
            wait_s = self.retry_after_s()
            self._reject(
                f"{self.upstream} failed {self._threshold} times in a row, so the service is not asking it for "
                f"now (circuit breaker open); it will try {self.upstream} again in {wait_s} s.",
                wait_s,
            )
        if self._probing:
            wait_s = self.retry_after_s()
            self._reject(
                f"{self.upstream} has been failing; one trial request to it is under way (circuit breaker "
                f"half-open). Try again in {wait_s} s.",
                wait_s,
            )

    def admit(self) -> bool:
        """Let an attempt through and return whether it is the probe, or raise `CircuitOpen`."""
        self.check()
        if self._state is BreakerState.CLOSED:
            return False
        self._probing = True
        self._probe_started_at = self._clock()
        self._set_state(BreakerState.HALF_OPEN)
        return True

    def record(self, probe: bool, failure: Failure | None, duration_s: float | None = None) -> None:
        """Record how an admitted attempt ended: ``failure`` None for a success; ``duration_s`` how long it took."""
        if probe:
            self._probing = False
        if failure is Failure.LOCAL:
            return  # says nothing about the upstream; a half-open breaker lets the next attempt probe
        if duration_s is not None:
            self._typical_attempt_s += 0.2 * (duration_s - self._typical_attempt_s)
        failed = failure in (Failure.TRANSIENT, Failure.DOWN)
        if self._state is BreakerState.CLOSED:
            self._failures = self._failures + 1 if failed else 0
            if self._failures >= self._threshold:
                self._open()
        elif probe:
            # Only the probe decides: attempts admitted before the breaker opened prove nothing about now.
            if failed:
                self._open()
            else:
                self._failures = 0
                self._set_state(BreakerState.CLOSED)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set_state(BreakerState.OPEN)

    def _reject(self, detail: str, wait_s: int) -> None:
        BREAKER_REJECTIONS.labels(self.upstream).inc()
        raise CircuitOpen(detail, upstream=self.upstream, retry_after_s=wait_s, state=self._state)

    def _set_state(self, state: BreakerState) -> None:
        self._state = state
        BREAKER_STATE.labels(self.upstream).set(int(state))


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one logical call tries: attempts, backoff base and one overall deadline."""

    max_attempts: int
    backoff_s: float
    deadline_s: float


class _StopForLongRetryAfter(stop_base):
    """Stop when the upstream asked for a longer wait than `MAX_HONOURED_RETRY_AFTER_S`."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        hint = upstream_retry_after_s(outcome.exception() if outcome else None)
        return hint is not None and hint > MAX_HONOURED_RETRY_AFTER_S


class UpstreamGuard:
    """Runs one upstream's calls through its breaker, retry policy and metrics."""

    def __init__(self, breaker: CircuitBreaker, policy: RetryPolicy) -> None:
        self.breaker = breaker
        self.policy = policy
        self._backoff = wait_random_exponential(multiplier=policy.backoff_s, max=30 * policy.backoff_s)

    @property
    def upstream(self) -> str:
        """Return the upstream's name (the metrics' ``upstream`` label)."""
        return self.breaker.upstream

    async def call(
        self,
        endpoint: str,
        attempt: Callable[[float], Awaitable[T]],
        *,
        slot: Callable[[], AbstractAsyncContextManager[None]] | None = None,
    ) -> T:
        """Return ``await attempt(deadline)``, retrying transient failures until ``deadline`` (a monotonic time).

        ``endpoint`` is the metrics label (tces, info, table, catalog, sector, astrocut). Each attempt must keep
        within ``deadline`` itself; the wait between attempts is kept within it here. ``slot``, when given, is the
        local capacity an attempt holds (entered before the breaker admits it, exited after the attempt).
        """
        deadline = time.monotonic() + self.policy.deadline_s
        slice_s = min_attempt_s(self.policy.deadline_s)
        failures: list[BaseException] = []

        def hint_s(state: RetryCallState) -> float | None:
            return upstream_retry_after_s(state.outcome.exception() if state.outcome else None)

        def wait_s(state: RetryCallState) -> float:
            return max(self._backoff(state), hint_s(state) or 0.0)

        def before_sleep(state: RetryCallState) -> None:
            UPSTREAM_RETRIES.labels(self.upstream, endpoint).inc()

        def worth_retrying(exc: BaseException) -> bool:
            # Not while the breaker is open or probing: the next attempt would only be refused.
            return classify(exc) is Failure.TRANSIENT and self.breaker.state is BreakerState.CLOSED

        retrying = AsyncRetrying(
            retry=retry_if_exception(worth_retrying),
            wait=wait_s,
            stop=stop_any(
                stop_after_attempt(self.policy.max_attempts),
                stop_before_delay(self.policy.deadline_s - slice_s),
                _StopForLongRetryAfter(),
            ),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for try_ in retrying:
            with try_:
                try:
                    return await self._attempt(endpoint, attempt, deadline, failures, slot)
                except BaseException as exc:
                    failures.append(exc)
                    raise
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(
        self,
        endpoint: str,
        attempt: Callable[[float], Awaitable[T]],
        deadline: float,
        failures: list[BaseException],
        slot: Callable[[], AbstractAsyncContextManager[None]] | None,
    ) -> T:
        async with AsyncExitStack() as held:
            try:
                self.breaker.check()  # refused callers are refused at once, not after queueing for a slot
                if slot is not None:
                    await self._take_slot(held, slot, deadline, failures)
                if failures and time_left_s(deadline) < min_attempt_s(self.policy.deadline_s):
                    # Too little time left for another attempt to succeed: answer the real error.
                    raise failures[-1] from failures[-1].__cause__
                probe = self.breaker.admit()
            except CircuitOpen:
                if failures:
                    # The breaker opened while we waited to retry: answer what MAST said, cause kept for the logs.
                    last = failures[-1]
                    raise last from last.__cause__
                raise
            return await self._admitted(endpoint, attempt, deadline, probe)

    async def _take_slot(
        self,
        held: AsyncExitStack,
        slot: Callable[[], AbstractAsyncContextManager[None]],
        deadline: float,
        failures: list[BaseException],
    ) -> None:
        """Enter ``slot`` while a useful slice of the deadline is left, else raise.

        What is raised then is the last upstream error, or `Overloaded` when no attempt was made: a local failure
        that never reached the upstream, so the breaker does not hear of it.
        """
        try:
            async with asyncio.timeout(time_left_s(deadline) - min_attempt_s(self.policy.deadline_s)):
                await held.enter_async_context(slot())
        except TimeoutError:
            if failures:
                raise failures[-1] from failures[-1].__cause__
            raise Overloaded(
                f"Every {self.upstream} slot of this service stayed busy until the request's deadline; "
                "try again later.",
                pool=self.upstream,
                retry_after_s=SLOT_RETRY_AFTER_S,
            ) from None

    async def _admitted(
        self, endpoint: str, attempt: Callable[[float], Awaitable[T]], deadline: float, probe: bool
    ) -> T:
        started = time.monotonic()
        outcome = "cancelled"
        failure: Failure | None = Failure.LOCAL
        try:
            result = await attempt(deadline)
        except ServiceError as exc:
            failure = classify(exc)
            outcome = "not_found" if isinstance(exc, NotFound) else str(status_of(exc))
            raise
        except Exception:
            outcome = "error"
            raise
        else:
            failure, outcome = None, "ok"
            return result
        finally:
            self.breaker.record(probe, failure, time.monotonic() - started)
            UPSTREAM_REQUESTS.labels(self.upstream, endpoint, outcome).inc()
            UPSTREAM_LATENCY.labels(self.upstream, endpoint).observe(time.monotonic() - started)


def time_left_s(deadline: float) -> float:
    """Return the seconds left before ``deadline`` (a `time.monotonic` time), never negative."""
    return max(0.0, deadline - time.monotonic())


class GuardedClient:
    """A client of one upstream: its HTTP client and URL, its guard, its budget, the limiters that parse.

    The guard is what every call goes through (retries, the breaker); the budget bounds one exchange.
    """

    def __init__(
        self, client: httpx.AsyncClient, url: str, limiters: Limiters, guard: UpstreamGuard, budget: Budget
    ) -> None:
        self._client = client
        self._url = url
        self._limiters = limiters
        self._guard = guard
        self._budget = budget
