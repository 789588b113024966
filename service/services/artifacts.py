"""Cache-or-produce with single-flight: the one place that combines the disk cache and coalescing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from service.infra.cache import CachedBody, DiskCache
from service.infra.singleflight import SingleFlight
from service.infra.threads import Limiters, run_blocking

T = TypeVar("T")


@dataclass(frozen=True)
class Artifact:
    """Bytes ready to cache and serve."""

    payload: bytes
    media_type: str
    ttl_s: int
    headers: dict[str, str] = field(default_factory=dict)


class ArtifactStore:
    """Double-checked caching: cache get → single-flight(key) → cache get again → produce → cache put.

    Nothing is stored when producing fails, so an upstream error is never cached.
    """

    def __init__(self, cache: DiskCache, limiters: Limiters) -> None:
        self._cache = cache
        self._limiters = limiters
        self._flights = SingleFlight()

    async def _get_fresh(self, key: str) -> CachedBody | None:
        body = await run_blocking(self._cache.get, key, limiter=self._limiters.io)
        if body is not None and not body.meta.is_fresh():
            body.close()
            return None
        return body

    async def _put(self, key: str, artifact: Artifact) -> CachedBody:
        def put() -> CachedBody:
            return self._cache.put(
                key, artifact.payload, media_type=artifact.media_type, ttl_s=artifact.ttl_s, headers=artifact.headers
            )

        return await run_blocking(put, limiter=self._limiters.io)

    async def body(self, key: str, produce: Callable[[], Awaitable[Artifact]]) -> tuple[CachedBody, bool]:
        """Return the cached body for ``key`` and whether it was a hit, producing and storing it on a miss."""
        cached = await self._get_fresh(key)
        if cached is not None:
            return cached, True

        async def fill() -> CachedBody:
            again = await self._get_fresh(key)
            if again is not None:
                return again
            return await self._put(key, await produce())

        return await self._flights.run(key, fill), False

    async def value(
        self,
        key: str,
        produce: Callable[[], Awaitable[T]],
        *,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        ttl_s: int,
    ) -> T:
        """Return a cached Python object, producing it on a miss; (de)serialisation runs in CPU threads."""
        cpu = self._limiters.cpu

        async def fill() -> T:
            cached = await self._get_fresh(key)
            if cached is not None:
                hit = cached  # bind for the closure: reading a file-backed body blocks, so it runs in the thread
                return await run_blocking(lambda: decode(hit.read()), limiter=cpu)
            fresh = await produce()
            payload = await run_blocking(encode, fresh, limiter=cpu)
            await self._put(key, Artifact(payload, "application/octet-stream", ttl_s))
            return fresh

        return await self._flights.run(key, fill)
