"""Cache-or-produce with single-flight: the one place that combines the disk cache and coalescing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from service.infra.cache import CachedBody, DiskCache
from service.infra.singleflight import SingleFlight
from service.infra.threads import Limiters, run_blocking

T = TypeVar("T")
log = logging.getLogger(__name__)
# Bump when the encoding of cached upstream data changes, so old entries are never decoded.
DATA_VERSION = "v1"


@dataclass(frozen=True)
class Artifact:
    """Bytes ready to cache and serve."""

    payload: bytes
    media_type: str
    ttl_s: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class UpstreamLedger:
    """Whether the work done under it needed upstream data that was not cached.

    `ArtifactStore.value` marks it when it had to produce (or wait for another request producing) its value;
    `ArtifactStore.body` passes the mark on to everyone waiting for the same body. Only work whose upstream
    calls all go through `value` can be judged this way.
    """

    asked_upstream: bool = False


# A context variable rather than a return value: the data methods (DvService.table, ...) have many callers, and
# only the response layer cares. Tasks copy the context, so work gathered in child tasks marks the same ledger.
_ledger: ContextVar[UpstreamLedger | None] = ContextVar("upstream_ledger", default=None)


@contextmanager
def upstream_ledger() -> Iterator[UpstreamLedger]:
    """Track, for the code inside the block, whether it needed anything from upstream; nests into an outer one."""
    ledger = UpstreamLedger()
    token = _ledger.set(ledger)
    try:
        yield ledger
    finally:
        _ledger.reset(token)
        if ledger.asked_upstream:
            _note_upstream_asked()


def _note_upstream_asked() -> None:
    ledger = _ledger.get()
    if ledger is not None:
        ledger.asked_upstream = True


@dataclass(frozen=True)
class Ready:
    """An answer that is in the cache, and whether this request found it there."""

    body: CachedBody
    hit: bool


class ArtifactStore:
    """Double-checked caching: cache get → single-flight(key) → cache get again → produce → cache put.

    Nothing is stored when producing fails, so an upstream error is never cached. A cache that cannot be
    written (disk full, a locked database) costs the cache entry, never the answer.
    """

    def __init__(self, cache: DiskCache, limiters: Limiters) -> None:
        self._cache = cache
        self._limiters = limiters
        self._flights = SingleFlight()

    async def get_fresh(self, key: str) -> CachedBody | None:
        """Return the fresh cached body for ``key``, or None."""
        body = await run_blocking(self._cache.get, key, limiter=self._limiters.io)
        if body is not None and not body.meta.is_fresh():
            body.close()
            return None
        return body

    async def _put(self, key: str, artifact: Artifact) -> CachedBody:
        def put() -> CachedBody:
            try:
                return self._cache.put(
                    key,
                    artifact.payload,
                    media_type=artifact.media_type,
                    ttl_s=artifact.ttl_s,
                    headers=artifact.headers,
                )
            except Exception:  # noqa: BLE001 - any cache failure: serve what we made, uncached
                log.exception("could not cache %s", key)
                return DiskCache.uncached(artifact.payload, artifact.media_type, artifact.ttl_s, artifact.headers)

        return await run_blocking(put, limiter=self._limiters.io)

    async def body(self, key: str, produce: Callable[[], Awaitable[Artifact]]) -> tuple[CachedBody, bool]:
        """Return the cached body for ``key`` and whether it was a hit, producing and storing it on a miss.

        Whether producing needed upstream data is recorded in the caller's `upstream_ledger`, for every request
        that waited on the same production.
        """
        cached = await self.get_fresh(key)
        if cached is not None:
            return cached, True

        async def fill() -> tuple[CachedBody | None, bool]:
            again = await self.get_fresh(key)
            if again is not None:
                # Another request stored it meanwhile. Its file handle must not be shared between the waiters,
                # so each opens its own below.
                again.close()
                return None, False
            with upstream_ledger() as ledger:
                artifact = await produce()
            return await self._put(key, artifact), ledger.asked_upstream

        produced, asked_upstream = await self._flights.run(key, fill)
        if asked_upstream:
            _note_upstream_asked()
        if produced is not None:
            return produced, False  # in-memory bytes: safe to hand to every waiter
        return await self.body(key, produce)

    async def value(
        self,
        key: str,
        produce: Callable[[], Awaitable[T]],
        *,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        ttl_s: int,
    ) -> T:
        """Return a cached Python object, producing it on a miss; (de)serialisation runs in worker threads.

        An entry that no longer decodes (a corrupt file, an old format) is dropped and produced again. A miss that
        produced the value (here or in the request this one waited for) is recorded in the `upstream_ledger`.
        """
        key = f"{DATA_VERSION}:{key}"

        async def decoded(body: CachedBody) -> T | None:
            def read() -> T | None:
                try:
                    return decode(body.read())
                except Exception:  # noqa: BLE001 - whatever is wrong with the entry, refetching fixes it
                    log.warning("dropping undecodable cache entry %s", key)
                    self._cache.delete(key)
                    return None

            return await run_blocking(read, limiter=self._limiters.cpu)

        cached = await self.get_fresh(key)
        if cached is not None and (value := await decoded(cached)) is not None:
            return value

        async def fill() -> tuple[T, bool]:
            again = await self.get_fresh(key)
            if again is not None and (value := await decoded(again)) is not None:
                return value, False
            fresh = await produce()
            payload = await run_blocking(encode, fresh, limiter=self._limiters.cpu)
            await self._put(key, Artifact(payload, "application/octet-stream", ttl_s))
            return fresh, True

        result, produced = await self._flights.run(key, fill)
        if produced:
            _note_upstream_asked()
        return result
