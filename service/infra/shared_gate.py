"""Politeness shared by every process: at most N calls in flight and R started per second, counted in Redis.

MAST's TESScut allows 10 requests in flight and 5 started per second per user, and several replicas are one user.
Each process keeps its own limits (the tighter bound when it runs alone); with a state Redis configured, a call
also needs one of the gate's leases and a start:

- **In flight**: a sorted set of leases scored by their expiry. A caller takes a lease when fewer than N are live
  (expired ones are dropped first), keeps extending it while its call runs, and removes it after. A process killed
  mid-call leaks its lease for at most ``lease_s``: a slot is never lost for good, which counters would risk.
- **Starts**: spaced, not windowed. Each call reserves the next start time, one 1/R s after the last reserved by
  any process, and sleeps until it. A window (the `limits` library's moving window was tried first) lets R calls
  start at once; with the scheduling jitter between a start here and its arrival at MAST, such bursts arrived as 7
  within one second in `tests/shared/test_politeness.py`. Spaced at exactly 1/R they still arrived as R+1 in a
  second once (one gap of 0.14 s for 0.2 s), so the spacing is 15 % wider: 4.3 starts per second for R = 5.
  The scripts are redis-py `Script`s, which load themselves again after a Redis restart (NOSCRIPT).

Redis's own clock (`TIME`) scores the leases, so the processes' clocks need not agree. When Redis cannot be reached,
the gate fails closed (`GateUnavailable`): calls to MAST stop rather than run over its limits; cached answers are
still served by the callers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_TIMEOUT_S = 2.0
# Starts are spaced 30 % wider than 1/R: the time from a start here to its arrival at MAST varies (a gap of 0.14 s
# arrived after a spacing of 0.2 s), and at exactly 1/R one short gap puts R+1 arrivals in a second. 15 % was not
# enough with four processes on two cores (two replicas, two workers: 6 arrivals in one second); at 30 % R+1
# arrivals need the gaps to shrink by 0.3 s in all.
_SPACING_MARGIN = 1.3
_POLL_S = 0.02

# Both lease scripts: KEYS[1] the lease set; ARGV[1] the token, ARGV[2] the lease in ms; they set the token's
# lease to end one lease from now (Redis's clock) and return 1, or return 0.
_LEASE = """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local function lease()
    redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
    return 1
end
"""
# Take a lease when fewer than ARGV[3] are live (expired ones dropped first).
_TAKE = (
    _LEASE
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then return lease() end
return 0
"""
)
# Extend a lease still held.
_EXTEND = (
    _LEASE
    + """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return lease() end
return 0
"""
)


# KEYS[1] the next free start time (ms, Redis's clock); ARGV: the interval in ms. Reserves the next start and
# returns how long to wait for it, in ms (a string: Lua numbers become integers on the way out).
_SPACE = """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + now[2] / 1000
local at = math.max(now_ms, tonumber(redis.call('GET', KEYS[1]) or '0'))
local following = at + tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(following), 'PX', math.ceil(following - now_ms) + 1000)
return tostring(at - now_ms)
"""


class GateUnavailable(OSError):
    """The state Redis cannot be reached, so a call cannot be counted against the shared limits."""


class SharedGate:
    """At most ``in_flight`` calls at once and ``starts_per_s`` started per second, across every process."""

    def __init__(
        self, redis_url: str, name: str, *, in_flight: int, starts_per_s: float, lease_s: float = 30.0
    ) -> None:
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S)
        self._key = f"tess:gate:{name}:leases"
        self._starts_key = f"tess:gate:{name}:next-start"
        self._name = name
        self._in_flight = in_flight
        self._lease_ms = int(lease_s * 1000)
        self._take = self._redis.register_script(_TAKE)
        self._extend = self._redis.register_script(_EXTEND)
        self._space = self._redis.register_script(_SPACE)
        self._interval_ms = 1000.0 / starts_per_s * _SPACING_MARGIN

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one lease and one start for the block; raises `GateUnavailable` when Redis cannot be reached."""
        token = uuid.uuid4().hex
        try:
            while not await self._take(keys=[self._key], args=[token, self._lease_ms, self._in_flight]):
                await asyncio.sleep(_POLL_S)
            keeper = asyncio.create_task(self._keep(token))
        except (RedisError, OSError) as error:
            raise GateUnavailable(f"the state Redis cannot be reached ({error})") from error
        except BaseException:
            # Cancelled while taking: the script may have run on Redis before its reply arrived.
            with suppress(RedisError, OSError):
                await asyncio.shield(self._redis.zrem(self._key, token))
            raise
        try:
            await self._start()
            yield
        finally:
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper
            with suppress(RedisError, OSError):
                await self._redis.zrem(self._key, token)

    async def _start(self) -> None:
        """Wait for this call's start time, reserved one interval after the last one reserved by any process."""
        try:
            wait_ms = float(await self._space(keys=[self._starts_key], args=[self._interval_ms]))
        except (RedisError, OSError) as error:
            raise GateUnavailable(f"the state Redis cannot be reached ({error})") from error
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)

    async def _keep(self, token: str) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                if not await self._extend(keys=[self._key], args=[token, self._lease_ms]):
                    log.warning("lease %s of %s expired while its call ran", token, self._name)
                    return
            except (RedisError, OSError) as error:
                log.warning("could not extend lease %s of %s: %s", token, self._name, error)

    async def ping(self) -> str | None:
        """Return None when the state Redis answers PING, else why not (for `/ready`)."""
        try:
            await self._redis.ping()  # type: ignore[misc]  # redis-py types ping for both clients
        except (RedisError, OSError) as error:
            return f"the state Redis cannot be reached ({error}): TESScut work and queued jobs answer 503"
        return None

    async def close(self) -> None:
        """Close the connection pool."""
        with suppress(RedisError, OSError):
            await self._redis.aclose()
