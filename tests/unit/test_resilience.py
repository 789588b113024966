"""The circuit breaker's state machine, the failure classification and the retry loop, without HTTP.

The HTTP-level behaviour (which faults retry, what the client sees) is in tests/api/test_fault_matrix.py.
"""

from __future__ import annotations

import asyncio
import errno
import time
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError

from service.errors import (
    BadUpstreamResponse,
    CircuitOpen,
    InsufficientStorage,
    NotFound,
    Overloaded,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from service.infra.metrics import BREAKER_STATE, UPSTREAM_REQUESTS, UPSTREAM_RETRIES
from service.problem_documents import status_of
from service.upstream.http import Budget, request_bytes
from service.upstream.resilience import (
    BreakerState,
    CircuitBreaker,
    Failure,
    RetryPolicy,
    UpstreamGuard,
    classify,
    upstream_retry_after_s,
)
from service.upstream.tesscut import _translate
from tests.polling import wait_until_async


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status_error(status: int, error: type[UpstreamUnavailable | UpstreamTimeout | BadUpstreamResponse], **headers):
    request = httpx.Request("GET", "http://mast.test/")
    response = httpx.Response(status, headers=headers, request=request)
    try:
        raise error("boom", upstream="Test") from httpx.HTTPStatusError("x", request=request, response=response)
    except error as exc:
        return exc


def caused_by(cause: BaseException, error=UpstreamUnavailable):
    try:
        raise error("boom", upstream="Test") from cause
    except error as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (status_error(503, UpstreamUnavailable), Failure.TRANSIENT),
        (status_error(429, UpstreamUnavailable), Failure.TRANSIENT),
        (status_error(504, UpstreamTimeout), Failure.TRANSIENT),
        (status_error(502, BadUpstreamResponse), Failure.TRANSIENT),
        (status_error(500, BadUpstreamResponse), Failure.DOWN),
        (status_error(400, BadUpstreamResponse), Failure.ANSWERED),
        (caused_by(httpx.ConnectError("refused")), Failure.TRANSIENT),
        (caused_by(httpx.ReadTimeout("slow"), UpstreamTimeout), Failure.TRANSIENT),
        (caused_by(httpx.RemoteProtocolError("cut"), BadUpstreamResponse), Failure.TRANSIENT),
        (caused_by(TimeoutError(), UpstreamTimeout), Failure.TRANSIENT),
        (caused_by(httpx.PoolTimeout("ours")), Failure.LOCAL),
        (caused_by(requests.ConnectionError("refused")), Failure.TRANSIENT),
        (caused_by(requests.exceptions.ChunkedEncodingError("cut"), BadUpstreamResponse), Failure.TRANSIENT),
        (caused_by(ValueError("bad json"), BadUpstreamResponse), Failure.ANSWERED),
        (BadUpstreamResponse("malformed", upstream="Test"), Failure.ANSWERED),
        (NotFound("no such TIC"), Failure.ANSWERED),
        (CircuitOpen("open", upstream="Test", retry_after_s=3, state=BreakerState.OPEN), Failure.LOCAL),
    ],
)
def test_classify(exc, expected):
    assert classify(exc) is expected


def test_retry_after_is_read_from_the_upstream_answer_only():
    assert upstream_retry_after_s(status_error(503, UpstreamUnavailable, **{"Retry-After": "7"})) == 7.0
    assert upstream_retry_after_s(status_error(503, UpstreamUnavailable)) is None
    assert upstream_retry_after_s(UpstreamUnavailable("x", upstream="T", retry_after_s=5)) is None


def test_breaker_opens_after_threshold_consecutive_failures_and_a_success_resets_the_count():
    clock = Clock()
    breaker = CircuitBreaker("Unit A", failure_threshold=3, reset_s=10, clock=clock)
    for failure in (Failure.TRANSIENT, Failure.DOWN, None, Failure.TRANSIENT, Failure.TRANSIENT):
        breaker.record(breaker.admit(), failure)
    assert breaker.state is BreakerState.CLOSED, "the success in the middle reset the count"
    for failure in (Failure.ANSWERED, Failure.LOCAL):
        breaker.record(breaker.admit(), failure)
    assert breaker.state is BreakerState.CLOSED
    breaker.record(breaker.admit(), Failure.DOWN)
    breaker.record(breaker.admit(), Failure.DOWN)
    assert breaker.state is BreakerState.CLOSED, "ANSWERED reset the count; LOCAL left it alone"
    breaker.record(breaker.admit(), Failure.DOWN)
    assert breaker.state is BreakerState.OPEN
    assert BREAKER_STATE.labels("Unit A")._value.get() == 2

    clock.now += 4
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    assert refused.value.retry_after_s == 6
    assert refused.value.extensions == {"upstream": "Unit A", "breaker": "open"}
    assert "Unit A" in refused.value.detail and "again in 6 s" in refused.value.detail


def test_half_open_lets_exactly_one_probe_through_and_its_outcome_decides():
    clock = Clock()
    breaker = CircuitBreaker("Unit B", failure_threshold=1, reset_s=10, clock=clock)
    breaker.record(breaker.admit(), Failure.TRANSIENT)
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN, "the probe is due"
    assert breaker.admit() is True
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()  # a second caller while the probe is out
    assert refused.value.retry_after_s == 1 and refused.value.extensions["breaker"] == "half-open"

    breaker.record(True, Failure.TRANSIENT)
    assert breaker.state is BreakerState.OPEN and breaker.retry_after_s() == 10

    clock.now += 10
    probe = breaker.admit()
    breaker.record(probe, Failure.LOCAL)  # e.g. cancelled: it proved nothing, the next caller probes
    probe = breaker.admit()
    assert probe is True
    breaker.record(probe, None)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.admit() is False and breaker.admit() is False


def test_a_late_success_from_before_the_breaker_opened_does_not_close_it():
    breaker = CircuitBreaker("Unit C", failure_threshold=1, reset_s=10, clock=Clock())
    early = breaker.admit()
    breaker.record(breaker.admit(), Failure.DOWN)
    breaker.record(early, None)
    assert breaker.state is BreakerState.OPEN


def guard(upstream: str, *, attempts: int = 3, deadline_s: float = 5.0, threshold: int = 100) -> UpstreamGuard:
    breaker = CircuitBreaker(upstream, failure_threshold=threshold, reset_s=60)
    return UpstreamGuard(breaker, RetryPolicy(max_attempts=attempts, backoff_s=0.001, deadline_s=deadline_s))


def counted(upstream: str, outcome: str) -> float:
    return UPSTREAM_REQUESTS.labels(upstream, "tces", outcome)._value.get()


@pytest.mark.anyio
async def test_transient_failures_are_retried_up_to_the_attempts_and_counted():
    calls = 0

    async def flaky(deadline: float) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise status_error(503, UpstreamUnavailable)
        return "ok"

    assert await guard("Unit D").call("tces", flaky) == "ok"
    assert calls == 3
    assert UPSTREAM_RETRIES.labels("Unit D", "tces")._value.get() == 2
    assert counted("Unit D", "503") == 2 and counted("Unit D", "ok") == 1


@pytest.mark.anyio
async def test_non_transient_failures_are_not_retried():
    calls = 0

    async def broken(deadline: float) -> str:
        nonlocal calls
        calls += 1
        raise status_error(500, BadUpstreamResponse)

    with pytest.raises(BadUpstreamResponse):
        await guard("Unit E").call("tces", broken)
    assert calls == 1


@pytest.mark.anyio
async def test_a_retry_after_that_does_not_fit_the_deadline_ends_the_retries():
    calls = 0

    async def overloaded(deadline: float) -> str:
        nonlocal calls
        calls += 1
        raise status_error(503, UpstreamUnavailable, **{"Retry-After": "30"})

    with pytest.raises(UpstreamUnavailable):
        await guard("Unit F", deadline_s=2).call("tces", overloaded)
    assert calls == 1


@pytest.mark.anyio
async def test_each_attempt_gets_the_same_overall_deadline():
    deadlines: list[float] = []

    async def slow(deadline: float) -> str:
        deadlines.append(deadline)
        raise caused_by(httpx.ReadTimeout("slow"), UpstreamTimeout)

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await guard("Unit G", attempts=3, deadline_s=5).call("tces", slow)
    assert len(deadlines) == 3 and len(set(deadlines)) == 1
    assert started + 5 <= deadlines[0] <= time.monotonic() + 5


@pytest.mark.anyio
async def test_when_the_breaker_opens_under_the_retries_the_upstream_error_is_answered():
    calls = 0

    async def down(deadline: float) -> str:
        nonlocal calls
        calls += 1
        raise status_error(503, UpstreamUnavailable)

    opened = guard("Unit H", attempts=5, threshold=2)
    with pytest.raises(UpstreamUnavailable) as first:
        await opened.call("tces", down)
    assert not isinstance(first.value, CircuitOpen) and calls == 2, "no attempt after the breaker opened"
    with pytest.raises(CircuitOpen):
        await opened.call("tces", down)
    assert calls == 2


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_retry_after_that_fits_the_deadline_is_waited_for():
    started: list[float] = []

    async def overloaded_once(deadline: float) -> str:
        started.append(time.monotonic())
        if len(started) == 1:
            raise status_error(503, UpstreamUnavailable, **{"Retry-After": "1"})
        return "ok"

    assert await guard("Unit I", deadline_s=5).call("tces", overloaded_once) == "ok"
    assert started[1] - started[0] >= 1.0, "at least as long as the upstream asked (the backoff alone is ~1 ms)"


def test_a_refused_caller_is_told_when_the_probe_should_be_back():
    clock = Clock()
    breaker = CircuitBreaker("Unit J", failure_threshold=1, reset_s=60, clock=clock)
    breaker.record(breaker.admit(), Failure.TRANSIENT, duration_s=21.0)  # attempts take ~20 s (big cutouts)
    clock.now += 60
    assert breaker.admit() is True
    clock.now += 3
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    # The moving average moved a fifth of the way from 1 s towards 21 s: 5 s, of which the probe ran 3.
    assert refused.value.retry_after_s == 2 and "again in 2 s" in refused.value.detail
    clock.now += 100
    with pytest.raises(CircuitOpen) as late:
        breaker.admit()
    assert late.value.retry_after_s == 1, "overdue: at least 1 s, never a reset period's worth"


@pytest.mark.anyio
async def test_a_call_queued_for_a_local_slot_does_not_hold_the_probe():
    clock = Clock()
    breaker = CircuitBreaker("Unit K", failure_threshold=1, reset_s=10, clock=clock)
    queued = UpstreamGuard(breaker, RetryPolicy(max_attempts=1, backoff_s=0.001, deadline_s=30))
    breaker.record(breaker.admit(), Failure.DOWN)
    clock.now += 10  # the probe is due
    slots = asyncio.Semaphore(1)
    await slots.acquire()  # our only slot is busy (a long download)
    waiting = 0

    @asynccontextmanager
    async def slot():
        nonlocal waiting
        waiting += 1
        async with slots:
            yield

    async def ok(deadline: float) -> str:
        return "ok"

    calls = [asyncio.create_task(queued.call("tces", ok, slot=slot)) for _ in range(2)]
    await wait_until_async(lambda: waiting >= 2, 5, what="both calls to queue for the slot", interval_s=0)
    breaker.check()  # both queue, neither holds the probe: nobody is refused for a probe stuck in our queue
    slots.release()
    assert await asyncio.gather(*calls) == ["ok", "ok"]
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.anyio
async def test_a_call_that_never_gets_a_local_slot_is_overloaded_and_not_counted():
    breaker = CircuitBreaker("Unit L", failure_threshold=1, reset_s=60)
    starved = UpstreamGuard(breaker, RetryPolicy(max_attempts=3, backoff_s=0.001, deadline_s=0.3))
    slots = asyncio.Semaphore(0)  # never free

    @asynccontextmanager
    async def slot():
        async with slots:
            yield

    async def never(deadline: float) -> str:
        raise AssertionError("no attempt without a slot")

    with pytest.raises(Overloaded) as overloaded:
        await starved.call("tces", slot=slot, attempt=never)
    assert overloaded.value.retry_after_s and overloaded.value.extensions == {"pool": "Unit L"}
    assert classify(overloaded.value) is Failure.LOCAL
    assert breaker.state is BreakerState.CLOSED, "our queue says nothing about the upstream"


@pytest.mark.anyio
async def test_a_long_upstream_retry_after_is_passed_on_at_once():
    calls = 0

    async def overloaded(deadline: float) -> str:
        nonlocal calls
        calls += 1
        raise status_error(503, UpstreamUnavailable, **{"Retry-After": "30"})

    # 30 s fits the 300 s deadline, but holding the request (and every caller coalesced onto it) helps nobody.
    with anyio.fail_after(10), pytest.raises(UpstreamUnavailable):  # a guard against hanging, not a speed check
        await guard("Unit M", deadline_s=300).call("tces", overloaded)
    assert calls == 1


@pytest.mark.anyio
async def test_no_attempt_starts_without_a_useful_slice_of_the_deadline():
    calls = 0

    async def slow_then_overloaded(deadline: float) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.47)  # leaves under a tenth of the 0.5 s deadline
        raise status_error(503, UpstreamUnavailable)

    with pytest.raises(UpstreamUnavailable) as answered:
        await guard("Unit N", deadline_s=0.5).call("tces", slow_then_overloaded)
    assert calls == 1, "a retry with 30 ms left would only end in a 504 that hides the 503"
    assert classify(answered.value) is Failure.TRANSIENT and status_of(answered.value) == 503


def test_tesscut_failures_on_our_side_are_local_and_a_failed_dns_lookup_is_unreachable():
    full = _translate(OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(full, InsufficientStorage) and classify(full) is Failure.LOCAL
    other = _translate(PermissionError(errno.EACCES, "Permission denied"))
    assert status_of(other) == 500 and classify(other) is Failure.LOCAL
    unresolved = requests.ConnectionError(
        MaxRetryError(None, "/", NameResolutionError("mast.test", None, OSError("Name or service not known")))
    )
    unreachable = _translate(unresolved)
    assert isinstance(unreachable, UpstreamUnavailable) and "could not be reached" in unreachable.detail


@pytest.mark.slow
@pytest.mark.anyio
async def test_waiting_for_our_own_pooled_connection_is_local(mast):
    # One connection, held by a slow request: the next one runs out of time before it gets on the wire.
    mast.set_fault("/api/v0.1/dvdata/tess/*/tces/", delay_s=1.0, times=1)
    url = mast.exomast_url + "dvdata/tess/100100827/tces/"
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as client:
        holder = asyncio.create_task(client.get(url))
        await wait_until_async(
            lambda: mast.count(endpoint="exomast.tces"), 30, what="the first request to hold the connection"
        )
        with pytest.raises(UpstreamUnavailable) as waited:
            await request_bytes(client, "GET", url, Budget("Test", max_bytes=10**6, total_timeout_s=0.2))
        await holder
    assert "waiting already" in waited.value.detail
    assert classify(waited.value) is Failure.LOCAL, "our pool's queue says nothing about the upstream"
    assert mast.count(endpoint="exomast.tces") == 1
