"""Cache-or-produce with single-flight: the one place that combines the disk cache and coalescing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
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
        """Return the cached body for ``key`` and whether it was a hit, producing and storing it on a miss."""
        cached = await self.get_fresh(key)
        if cached is not None:
            return cached, True

        async def fill() -> CachedBody | None:
            again = await self.get_fresh(key)
            if again is not None:
                # Another request stored it meanwhile. Its file handle must not be shared between the waiters,
                # so each opens its own below.
                again.close()
                return None
            return await self._put(key, await produce())

        produced = await self._flights.run(key, fill)
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

        An entry that no longer decodes (a corrupt file, an old format) is dropped and produced again.
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

        async def fill() -> T:
            again = await self.get_fresh(key)
            if again is not None and (value := await decoded(again)) is not None:
                return value
            fresh = await produce()
            payload = await run_blocking(encode, fresh, limiter=self._limiters.cpu)
            await self._put(key, Artifact(payload, "application/octet-stream", ttl_s))
            return fresh

        return await self._flights.run(key, fill)
