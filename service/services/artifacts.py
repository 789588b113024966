"""Cache-or-produce with single-flight: the one place that combines the disk cache and coalescing.

Stale-if-error: an entry is kept `DiskCache.keep_stale_s` past its freshness (``TESS_SERVICE_STALE_IF_ERROR_S``).
When it has expired and producing it again fails with an `UpstreamError` (MAST's 502/503/504, an open circuit
breaker's 503), the expired copy is served instead, marked with its `CachedBody.stale_reason`, and left as it
was: it is not rewritten, so the next request asks MAST again. A `NotFound` is an answer, not a failure: it is
passed on, never papered over with an old copy (MAST saying a TCE is gone is news the client must get).

Warm hits stay on the event loop: the disk cache's in-memory tier answers small entries without a worker thread,
and `ArtifactStore.value` keeps the values it decoded, keyed by the entry's ETag (its bytes' hash), so the same
bytes are not decoded twice while they stay in the cache. Those values are shared between requests: read-only.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final, TypeVar, cast

from service.errors import UpstreamError
from service.infra.cache import CachedBody, DiskCache
from service.infra.http_cache import note_stale_served
from service.infra.metrics import CACHE_LOOKUPS, PRODUCTIONS
from service.infra.shared_flights import SharedFlights
from service.infra.singleflight import SingleFlight
from service.infra.threads import Limiters, run_blocking
from service.problem_documents import status_of

T = TypeVar("T")
log = logging.getLogger(__name__)
STALE_REASON_MAX_CHARS = 200
# Decoded values kept: small ones (TCE lists, DV headers, sector lists, TIC entries) by count and payload bytes;
# large ones (DV tables: a 6.5 MB table takes ~7 ms to decode, holding the GIL) by count alone.
SMALL_VALUE_MAX_BYTES = 64 * 1024
SMALL_VALUES_MAX = 1024
SMALL_VALUES_MAX_BYTES = 16 * 1024 * 1024
LARGE_VALUE_MAX_BYTES = 64 * 1024 * 1024
LARGE_VALUES_MAX = 4

_HIT, _MISS, _STALE = (CACHE_LOOKUPS.labels(result) for result in ("hit", "miss", "stale"))


@dataclass(frozen=True)
class Artifact:
    """Bytes ready to cache and serve."""

    payload: bytes
    media_type: str
    ttl_s: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class UpstreamLedger:
    """Whether the work done under it needed upstream data that was not cached, or was made from stale data.

    `ArtifactStore.value` marks it when it had to produce (or wait for another request producing) its value, and
    records the reason when it served an expired value because upstream failed; `ArtifactStore.body` passes both
    on to everyone waiting for the same body. Only work whose upstream calls all go through `value` can be judged
    this way.
    """

    asked_upstream: bool = False
    stale_reason: str | None = None


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
        if ledger.stale_reason is not None:
            _note_stale(ledger.stale_reason)


def _note_upstream_asked() -> None:
    ledger = _ledger.get()
    if ledger is not None:
        ledger.asked_upstream = True


def _note_stale(reason: str) -> None:
    """Record that stale data was used: in the ledger (so the body made from it is not cached) and the request."""
    ledger = _ledger.get()
    if ledger is not None and ledger.stale_reason is None:
        ledger.stale_reason = reason
    note_stale_served(reason)


def stale_reason(error: UpstreamError) -> str:
    """Return what failed, for ``X-Stale-Reason``: printable ASCII on one line, at most 200 characters."""
    upstream = error.extensions.get("upstream", "MAST")
    text = f"{upstream} failed ({status_of(error)} {error.title}): {error.detail}"
    text = " ".join("".join(ch if " " <= ch <= "~" else "?" for ch in text).split())
    return text if len(text) <= STALE_REASON_MAX_CHARS else text[: STALE_REASON_MAX_CHARS - 3] + "..."


def _serving_stale(key: str, error: UpstreamError) -> str:
    """Log, count and note (ledger and request) that ``key`` is served stale because of ``error``; return why."""
    reason = stale_reason(error)
    log.warning("serving stale %s: %s", key, reason)
    _STALE.inc()
    _note_stale(reason)
    return reason


class _Undecodable:
    """Marks a cache entry that did not decode (None is a value some entries hold)."""


_UNDECODABLE: Final = _Undecodable()


class DecodedValues:
    """Values decoded from cache entries, by key and the entry's ETag: LRU, bounded; used on the event loop only.

    A value is found only by the ETag of the entry just read, so it is never more than those very bytes decoded:
    whatever drops, evicts or rewrites the entry makes its value unreachable (and LRU order then pushes it out).
    """

    def __init__(
        self,
        *,
        small_max: int = SMALL_VALUES_MAX,
        small_max_bytes: int = SMALL_VALUES_MAX_BYTES,
        large_max: int = LARGE_VALUES_MAX,
    ) -> None:
        self._tiers = (
            _ValueLru(small_max, small_max_bytes, SMALL_VALUE_MAX_BYTES),
            _ValueLru(large_max, large_max * LARGE_VALUE_MAX_BYTES, LARGE_VALUE_MAX_BYTES),
        )

    def get(self, key: str, etag: str) -> object:
        """Return the value decoded from the entry ``key`` with ``etag``, or `_UNDECODABLE` when not held."""
        for tier in self._tiers:
            found = tier.get(key, etag)
            if found is not _UNDECODABLE:
                return found
        return _UNDECODABLE

    def put(self, key: str, etag: str, size: int, value: object) -> None:
        """Keep ``value``, decoded from ``size`` bytes with ``etag``, if it is small enough to keep."""
        small, large = self._tiers
        (small if size <= SMALL_VALUE_MAX_BYTES else large).put(key, etag, size, value)

    def discard(self, key: str) -> None:
        """Forget the value of ``key``."""
        for tier in self._tiers:
            tier.discard(key)

    def __len__(self) -> int:
        """Return the number of values held."""
        return sum(len(tier.entries) for tier in self._tiers)


class _ValueLru:
    def __init__(self, max_entries: int, max_bytes: int, max_entry_bytes: int) -> None:
        self.max_entries, self.max_bytes, self.max_entry_bytes = max_entries, max_bytes, max_entry_bytes
        self.entries: OrderedDict[str, tuple[str, int, object]] = OrderedDict()
        self.bytes = 0

    def get(self, key: str, etag: str) -> object:
        held = self.entries.get(key)
        if held is None or held[0] != etag:
            return _UNDECODABLE
        self.entries.move_to_end(key)
        return held[2]

    def put(self, key: str, etag: str, size: int, value: object) -> None:
        if size > self.max_entry_bytes or self.max_entries <= 0:
            return
        self.discard(key)
        self.entries[key] = (etag, size, value)
        self.bytes += size
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            self.bytes -= self.entries.popitem(last=False)[1][1]

    def discard(self, key: str) -> None:
        held = self.entries.pop(key, None)
        if held is not None:
            self.bytes -= held[1]


class ArtifactStore:
    """Double-checked caching: cache get → single-flight(key) → cache get again → produce → cache put.

    Nothing is stored when producing fails, so an upstream error is never cached; nor is a body made from stale
    data. A cache that cannot be written (disk full, a locked database) costs the cache entry, never the answer.
    Each `body`/`value` call counts one lookup in ``tess_cache_lookups_total``: hit, miss or stale.
    ``keep_values`` keeps decoded values (see `DecodedValues`); off, every `value` hit decodes again.
    """

    def __init__(
        self,
        cache: DiskCache,
        limiters: Limiters,
        *,
        keep_values: bool = True,
        shared_flights: SharedFlights | None = None,
    ) -> None:
        self._cache = cache
        self._limiters = limiters
        self._flights = SingleFlight()
        self._shared_flights = shared_flights
        self._stale_window_s = cache.keep_stale_s
        self._values = DecodedValues() if keep_values else DecodedValues(small_max=0, large_max=0)

    async def _get(self, key: str) -> CachedBody | None:
        """Return the cached body for ``key``, fresh or not (checked against its checksum), or None.

        From the cache's in-memory tier when it holds the entry: no worker thread for a warm hit.
        """
        body = self._cache.get_memory(key)
        if body is not None:
            return body
        return await run_blocking(self._cache.get, key, limiter=self._limiters.io)

    async def _get_fresh(self, key: str) -> CachedBody | None:
        body = await self._get(key)
        if body is not None and not body.meta.is_fresh():
            body.close()
            return None
        return body

    async def get_fresh(self, key: str) -> CachedBody | None:
        """Return the fresh cached body for ``key``, or None (counted as a cache hit or miss)."""
        body = await self._get_fresh(key)
        (_MISS if body is None else _HIT).inc()
        return body

    async def _get_stale(self, key: str) -> CachedBody | None:
        """Return the expired body for ``key`` if it is still within the stale-if-error window, else None."""
        if self._stale_window_s <= 0:
            return None
        body = await self._get(key)
        if body is not None and self._cache.clock() >= body.meta.fresh_until + self._stale_window_s:
            body.close()
            return None
        return body

    async def stale(self, key: str, error: UpstreamError) -> CachedBody | None:
        """Return the expired body of ``key`` to serve because making it again failed with ``error``, else None.

        None when there is no copy within the stale-if-error window (or the window is 0). A body returned is
        marked with its ``stale_reason``, counted as a stale lookup and noted in the `upstream_ledger` and the
        request, as `body` does; it is left as it is in the cache. For work not produced through `body` (cutout
        jobs), whose failure the caller holds.
        """
        body = await self._get_stale(key)
        if body is not None:
            body.stale_reason = _serving_stale(key, error)
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
                return self._cache.uncached(artifact.payload, artifact.media_type, artifact.ttl_s, artifact.headers)

        return await run_blocking(put, limiter=self._limiters.io)

    async def body(self, key: str, produce: Callable[[], Awaitable[Artifact]]) -> tuple[CachedBody, bool]:
        """Return the cached body for ``key`` and whether it was a hit, producing and storing it on a miss.

        Whether producing needed upstream data is recorded in the caller's `upstream_ledger`, for every request
        that waited on the same production. When producing fails upstream, an expired copy within the stale window
        is returned instead (its ``stale_reason`` set); a body produced from stale data is returned uncached.
        """
        cached = await self._get(key)
        if cached is not None:
            if cached.meta.is_fresh():
                _HIT.inc()
                return cached, True
            cached.close()  # expired: opened again only if it must be served stale

        try:
            produced, asked_upstream, reason = await self._flights.run(key, lambda: self._fill(key, produce))
        except UpstreamError as error:
            stale = await self.stale(key, error)
            if stale is None:
                raise
            return stale, False
        if asked_upstream:
            _note_upstream_asked()
        if reason is not None:
            _note_stale(reason)
        if produced is not None:
            (_STALE if reason is not None else _MISS).inc()
            return produced, False  # in-memory bytes: safe to hand to every waiter
        return await self.body(key, produce)

    async def _fill(
        self, key: str, produce: Callable[[], Awaitable[Artifact]]
    ) -> tuple[CachedBody | None, bool, str | None]:
        """Produce and store ``key`` (once per flight); return the body, whether MAST was asked, any stale reason.

        The body is None when another request stored it meanwhile: its file handle must not be shared between
        the waiters, so each opens its own.
        """
        again = await self._get_fresh(key)
        if again is not None:
            again.close()
            return None, False, None
        if self._shared_flights is None:
            return await self._produce(key, produce)
        async with self._shared_flights.hold(key):
            # Another replica may have made it while this one waited for the lock: it is in the shared tier then.
            again = await self._get_fresh(key)
            if again is not None:
                again.close()
                return None, False, None
            return await self._produce(key, produce)

    async def _produce(
        self, key: str, produce: Callable[[], Awaitable[Artifact]]
    ) -> tuple[CachedBody | None, bool, str | None]:
        PRODUCTIONS.inc()
        with upstream_ledger() as ledger:
            artifact = await produce()
        if ledger.stale_reason is not None:
            # Made from expired data: served, marked, and not cached, so the next request tries MAST again.
            made = self._cache.uncached(artifact.payload, artifact.media_type, artifact.ttl_s, artifact.headers)
            made.stale_reason = ledger.stale_reason
            return made, ledger.asked_upstream, ledger.stale_reason
        return await self._put(key, artifact), ledger.asked_upstream, None

    async def _decoded(self, key: str, body: CachedBody, decode: Callable[[bytes], T]) -> T | _Undecodable:
        """Return a cached entry's value: the one kept decoded, else decoded now (and kept); drop an undecodable one."""
        meta = body.meta
        kept = self._values.get(key, meta.etag)
        if kept is not _UNDECODABLE:
            body.close()
            return cast(T, kept)

        def read() -> T | _Undecodable:
            try:
                return decode(body.read())
            except Exception:  # noqa: BLE001 - whatever is wrong with the entry, refetching fixes it
                log.warning("dropping undecodable cache entry %s", key)
                self._cache.delete(key)
                return _UNDECODABLE

        value = await run_blocking(read, limiter=self._limiters.cpu)
        if isinstance(value, _Undecodable):
            self._values.discard(key)
        else:
            self._values.put(key, meta.etag, meta.size, value)
        return value

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

        The object may be shared with other requests (decoded values are kept, see `DecodedValues`): callers must
        not mutate it. An entry that no longer decodes (a corrupt file, an old format) is dropped and produced
        again. A miss that produced the value (here or in the request this one waited for) is recorded in the
        `upstream_ledger`; so is an expired value served because producing it failed upstream (within the stale
        window).
        """

        async def decoded(body: CachedBody) -> T | _Undecodable:
            return await self._decoded(key, body, decode)

        cached = await self._get_fresh(key)
        if cached is not None and not isinstance(value := await decoded(cached), _Undecodable):
            _HIT.inc()
            return value

        async def fill() -> tuple[T, bool]:
            again = await self._get_fresh(key)
            if again is not None and not isinstance(value := await decoded(again), _Undecodable):
                return value, False
            fresh = await produce()
            payload = await run_blocking(encode, fresh, limiter=self._limiters.cpu)
            stored = await self._put(key, Artifact(payload, "application/octet-stream", ttl_s))
            self._values.put(key, stored.meta.etag, stored.meta.size, fresh)
            return fresh, True

        try:
            result, produced = await self._flights.run(key, fill)
        except UpstreamError as error:
            stale = await self._get_stale(key)
            if stale is None or isinstance(old := await decoded(stale), _Undecodable):
                raise
            _serving_stale(key, error)
            return old
        (_MISS if produced else _HIT).inc()
        if produced:
            _note_upstream_asked()
        return result
