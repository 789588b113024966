"""Readiness: whether this instance can serve, and whether an upstream's circuit breaker is open.

Serving needs a disk cache that takes a write, a read and a delete (of a probe entry, in a thread of its own).
MAST itself is not called: the breakers already say whether it has been failing, and a probe per readiness poll
would only add load.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from anyio import CapacityLimiter

from service.infra.cache import DiskCache
from service.infra.shared_tier import SharedTier
from service.infra.threads import run_blocking
from service.infra.tiered_cache import TieredCache
from service.schemas import ReadyCheck
from service.upstream.resilience import BreakerState, CircuitBreaker

# A cache that takes longer than this to write, read and delete a few bytes is not fit to serve.
CACHE_PROBE_TIMEOUT_S = 5.0
_PROBE_PAYLOAD = b"ready?"


@dataclass(frozen=True)
class Readiness:
    """What one readiness poll found: the cache's check and each upstream breaker's."""

    cache: ReadyCheck
    upstreams: tuple[ReadyCheck, ...]

    @property
    def checks(self) -> list[ReadyCheck]:
        """Return every check, the cache's first."""
        return [self.cache, *self.upstreams]

    @property
    def serving(self) -> bool:
        """Return whether this instance can serve: its cache works (an open breaker only degrades it)."""
        return self.cache.ok

    @property
    def status(self) -> str:
        """Return 'ready', or 'degraded' when an upstream's breaker is open (cached answers are still served)."""
        return "ready" if all(check.ok for check in self.checks) else "degraded"


class ReadinessProbe:
    """Checks the cache (in a thread of its own) and reads each upstream's breaker."""

    def __init__(
        self,
        cache: DiskCache,
        breakers: tuple[CircuitBreaker, ...],
        coordination: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self._cache = cache
        self._breakers = breakers
        self._coordination = coordination
        # One thread for cache probes, apart from the I/O pool so heavy I/O cannot starve it.
        self._limiter = CapacityLimiter(1)
        self._shared_limiter = CapacityLimiter(1)  # the shared tier's ping: a stuck one holds no cache probe

    async def check(self) -> Readiness:
        """Probe the cache (and the shared tier, when there is one) and read the breakers."""
        others = tuple(_breaker_check(breaker) for breaker in self._breakers)
        if self._coordination is not None:
            others = (await self._coordination_check(self._coordination), *others)
        if isinstance(self._cache, TieredCache):
            others = (await self._shared_check(self._cache.shared), *others)
        return Readiness(await self._cache_check(), others)

    async def _coordination_check(self, ping: Callable[[], Awaitable[str | None]]) -> ReadyCheck:
        """Ask the state Redis now: when it is down, cached answers are served and new TESScut work is a 503."""
        try:
            async with asyncio.timeout(CACHE_PROBE_TIMEOUT_S):
                problem = await ping()
        except TimeoutError:
            problem = f"the state Redis did not answer within {CACHE_PROBE_TIMEOUT_S:g} s"
        if problem is not None:
            return ReadyCheck(name="coordination", ok=False, state="unavailable", detail=problem)
        return ReadyCheck(name="coordination", ok=True, state="available")

    async def _shared_check(self, shared: SharedTier) -> ReadyCheck:
        """Ask the shared tier now: when it is down, this replica serves what its own tiers hold (degraded)."""
        try:
            async with asyncio.timeout(CACHE_PROBE_TIMEOUT_S):
                # Its own thread, abandoned on timeout: a stalled Redis or store must not hold `/ready`.
                answered = await run_blocking(shared.ping, limiter=self._shared_limiter, abandon_on_cancel=True)
        except TimeoutError:
            late = f"Redis or the object store did not answer within {CACHE_PROBE_TIMEOUT_S:g} s"
            return ReadyCheck(name="shared cache", ok=False, state="unavailable", detail=late)
        ok, state, detail = shared.state()
        if not answered and ok:
            ok, state = False, "unavailable"
        return ReadyCheck(name="shared cache", ok=ok, state=state, detail=detail)

    async def _cache_check(self) -> ReadyCheck:
        try:
            async with asyncio.timeout(CACHE_PROBE_TIMEOUT_S):
                # Abandoned on timeout: a stuck disk must not hold the answer; the stuck thread keeps the probe
                # limiter, so later polls also answer "failing" until the disk comes back.
                await run_blocking(_probe_cache, self._cache, limiter=self._limiter, abandon_on_cancel=True)
        except TimeoutError:
            detail = f"writing, reading and deleting a probe entry took over {CACHE_PROBE_TIMEOUT_S:g} s"
            return ReadyCheck(name="cache", ok=False, state="failing", detail=detail)
        except Exception as exc:  # noqa: BLE001 - whatever breaks the cache, the answer is "not ready" and why
            return ReadyCheck(name="cache", ok=False, state="failing", detail=f"{type(exc).__name__}: {exc}")
        return ReadyCheck(name="cache", ok=True, state="writable")


def _breaker_check(breaker: CircuitBreaker) -> ReadyCheck:
    state = breaker.state
    is_open = state is BreakerState.OPEN
    return ReadyCheck(
        name=breaker.upstream,
        ok=not is_open,
        state=state.name.lower().replace("_", "-"),
        retry_after_s=breaker.retry_after_s() if is_open else None,
    )


def _probe_cache(cache: DiskCache) -> None:
    """Write, read back and delete a small entry (blocking: runs in a worker thread)."""
    key = f"ready-probe:{uuid.uuid4().hex}"  # its own key, so concurrent probes cannot disturb each other
    # This replica's own disk tier only (DiskCache's methods, not a TieredCache's): the shared tier has its own
    # check, and a slow Redis must not make this replica look unable to serve.
    try:
        DiskCache.put(cache, key, _PROBE_PAYLOAD, media_type="application/octet-stream", ttl_s=60)
        entry = DiskCache.get(cache, key)
        if entry is None:
            raise OSError("the entry just written is not there")
        try:
            if entry.read() != _PROBE_PAYLOAD:
                raise OSError("the entry just written reads back different")
        finally:
            entry.close()
    finally:
        DiskCache.delete(cache, key)
