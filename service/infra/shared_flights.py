"""Single-flight across processes: one replica makes an answer while the others wait for it (opt-in, Redis).

Within a process `SingleFlight` already joins identical requests; this joins processes. The first to take a key's
lock (`SET NX` with a lease, through redis-py's `Lock`: token-checked release, so a process never frees another's
lock) makes the answer and shares it through the shared cache tier; the others wait for the lock, then find the
answer in the cache. A lease that keeps being extended while the work runs means a killed holder frees the key
within ``lease_s``, and a long production never loses it.

Nothing here fails a request: with Redis unreachable, or a wait longer than ``wait_s``, the caller goes ahead on its
own (duplicate work, never an error), and the failure is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError

from service.infra.metrics import SHARED_FLIGHTS

log = logging.getLogger(__name__)

_TIMEOUT_S = 2.0
_RETRY_AFTER_S = 5.0


class SharedFlights:
    """Locks per key in Redis; `hold(key)` is the critical section (see the module's doc)."""

    def __init__(
        self, redis_url: str, *, lease_s: float = 30.0, wait_s: float = 120.0, prefix: str = "tess:flight:"
    ) -> None:
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S)
        self._lease_s = lease_s
        self._wait_s = wait_s
        self._prefix = prefix
        self._down_until = 0.0  # after a failure, replicas go ahead alone for a while without asking

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[bool]:
        """Hold ``key``'s lock for the block; yields whether it is held (False: going ahead without it)."""
        lock = self._redis.lock(
            self._prefix + key, timeout=self._lease_s, sleep=0.05, blocking_timeout=self._wait_s, thread_local=False
        )
        outcome = "held"
        try:
            if time.monotonic() < self._down_until:
                outcome = "unavailable"
            elif not await lock.acquire():
                outcome = "timeout"
        except (RedisError, OSError) as error:
            log.warning("shared single-flight for %s unavailable (%s): going ahead alone", key, error)
            self._down_until = time.monotonic() + _RETRY_AFTER_S
            outcome = "unavailable"
        SHARED_FLIGHTS.labels(outcome).inc()
        if outcome != "held":
            yield False
            return
        keeper = asyncio.create_task(self._keep(lock))
        try:
            yield True
        finally:
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper
            with suppress(RedisError, OSError, LockError):
                await lock.release()

    async def _keep(self, lock: aioredis.lock.Lock) -> None:
        """Extend the lease every third of it while the block runs."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await lock.reacquire()
            except LockError as error:
                log.warning("the lease of %s was lost: %s", lock.name, error)  # expired: nothing left to extend
                return
            except (RedisError, OSError) as error:
                log.warning("could not extend the lease of %s (trying again): %s", lock.name, error)

    async def close(self) -> None:
        """Close the connection pool."""
        with suppress(RedisError, OSError):
            await self._redis.aclose()
