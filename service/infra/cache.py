"""A size-bounded disk cache of immutable byte payloads, each stored with its HTTP metadata and checked when read.

diskcache writes a large value to its own file and only then commits the row that points at it, so a crash
mid-write leaves at most an orphan file (swept at start-up), never a half-written entry that is later served. The
metadata (media type, ETag, freshness) rides in the entry's ``tag`` column, in the same row as the value.

`DiskCache` is the facade over three parts: this module (storage, expiry, size limit, sweep), `integrity` (every
entry's bytes are checked against its SHA-256 ETag before they are handed out; an entry that does not match is
dropped and reads as missing, so it is produced again) and `memory_tier` (small entries just checked or written,
so that a warm hit, `DiskCache.get_memory`, needs no worker thread, no SQLite and no hashing). Inline entries (at
most `INLINE_MAX_BYTES`, in SQLite) are hashed on every read: ~40 µs at most; value files once per process.

Every freshness and expiry decision reads the cache's ``clock`` (the system's by default), so tests move time by
hand instead of sleeping.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import diskcache

from service.infra.cache_entries import CachedBody, EntryMeta
from service.infra.integrity import (
    FileId,
    HashingReader,
    VerifiedFiles,
    file_id,
    file_unchanged,
    stream_etag,
    strong_etag,
)
from service.infra.memory_tier import MEMORY_ENTRY_MAX_BYTES, MEMORY_MAX_BYTES, MemoryEntry, MemoryTier
from service.infra.metrics import CACHE_CORRUPT, CACHE_EVICTIONS, CACHE_READS, CACHE_VOLUME

__all__ = ["INLINE_MAX_BYTES", "READ_WHOLE_MAX_BYTES", "CachedBody", "DiskCache", "EntryMeta", "strong_etag"]

# Payloads up to this size stay inside SQLite; larger ones become files that can be streamed.
INLINE_MAX_BYTES = 64 * 1024
# Payloads up to this size are read whole when fetched (one thread hop); larger ones are streamed.
READ_WHOLE_MAX_BYTES = 1024 * 1024
# SQLite's write-ahead log is checkpointed at about this size and cut back to it; the size limit keeps room for it.
WAL_SIZE_LIMIT_BYTES = 1024 * 1024
_WAL_CHECKPOINT_PAGES = WAL_SIZE_LIMIT_BYTES // 4096
_READ_MEMORY, _READ_DISK = (CACHE_READS.labels(tier) for tier in ("memory", "disk"))

log = logging.getLogger(__name__)


class DiskCache:
    """Blocking cache API; callers run it in worker threads (see `service.infra.threads`).

    Entries outlive their freshness by ``keep_stale_s`` so that they can be served stale when MAST fails
    (`ArtifactStore`); the size limit evicts the least recently stored first, and is enforced after every write
    (diskcache itself culls at most ten entries per write, which one large file can outgrow).
    ``write_pause_s`` is a test hook for crash tests, 0 (inert) in production: every file copied into the cache
    stalls that long after its first 4 MiB. ``memory_max_bytes`` and ``memory_entry_max_bytes`` size the in-memory
    tier (0 turns it off). ``clock`` says what time it is for every freshness and expiry decision.
    """

    def __init__(
        self,
        directory: Path,
        *,
        size_limit_bytes: int,
        keep_stale_s: int = 7 * 86400,
        write_pause_s: float = 0.0,
        memory_max_bytes: int = MEMORY_MAX_BYTES,
        memory_entry_max_bytes: int = MEMORY_ENTRY_MAX_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.keep_stale_s = keep_stale_s
        self.size_limit_bytes = size_limit_bytes
        self.clock = clock
        self._write_pause_s = write_pause_s
        self._verified = VerifiedFiles()
        self.memory = MemoryTier(memory_max_bytes, memory_entry_max_bytes)
        self._cull_lock = threading.Lock()
        self._cache = diskcache.Cache(
            str(directory),
            # diskcache counts its database and value files; the write-ahead log beside them is kept below its own
            # bound, which is reserved here so that the whole directory stays within the limit.
            size_limit=max(size_limit_bytes - WAL_SIZE_LIMIT_BYTES, size_limit_bytes // 2),
            disk_min_file_size=INLINE_MAX_BYTES,
            eviction_policy="least-recently-stored",
            cull_limit=0,  # writes never cull on their own: `_enforce_size_limit` culls, counts and reports
            sqlite_journal_size_limit=WAL_SIZE_LIMIT_BYTES,
            sqlite_wal_autocheckpoint=_WAL_CHECKPOINT_PAGES,
        )

    # --- reading -----------------------------------------------------------------------------------------

    def get_memory(self, key: str) -> CachedBody | None:
        """Return the entry for ``key`` (fresh or not) from the in-memory tier, or None; safe on the event loop.

        An entry read from a value file is served only while that file is still the one it was read from: one
        ``stat`` (a few µs, no data read), so a file rewritten or removed behind the cache's back goes to `get`,
        which checks it again, as it would have without this tier.
        """
        entry = self.memory.get(key, self.clock())
        if entry is None:
            return None
        if entry.file_id is not None and not file_unchanged(entry.file_id):
            self.memory.forget(key)
            return None
        _READ_MEMORY.inc()
        return CachedBody(entry.meta, data=entry.data)

    def get(self, key: str) -> CachedBody | None:
        """Return the entry for ``key`` (fresh or not) with its bytes checked, or None (a corrupt one is dropped).

        Always reads the disk; a small entry read whole is then kept in the in-memory tier (see `get_memory`).
        """
        epoch = self.memory.epoch
        _READ_DISK.inc()
        value, expire_time, tag = self._cache.get(key, default=None, read=True, expire_time=True, tag=True)
        if value is None:
            return None
        if expire_time is not None and expire_time <= self.clock():
            # diskcache judged expiry by the system clock; by the cache's own (in tests, moved ahead) it is gone.
            _close(value)
            return None
        try:
            meta = EntryMeta.from_tag(tag, self.clock)
        except (TypeError, ValueError):
            # Metadata from another version of the service: the entry cannot be served correctly.
            _close(value)
            self.delete(key)
            return None
        if isinstance(value, bytes):
            if len(value) != meta.size or strong_etag(value) != meta.etag:
                self._drop_corrupt(key, "inline entry")
                return None
            self._remember(key, meta, value, None, expire_time, epoch)
            return CachedBody(meta, data=value)
        try:
            return self._checked_file(key, meta, value, expire_time, epoch)
        except BaseException:
            value.close()
            raise

    def _remember(
        self, key: str, meta: EntryMeta, data: bytes, known: FileId | None, expires_at: float | None, epoch: int
    ) -> None:
        """Offer a checked (or just written) payload to the in-memory tier, to be held until ``expires_at``."""
        if self.memory.max_bytes > 0 and len(data) <= self.memory.max_entry_bytes:
            until = float("inf") if expires_at is None else expires_at
            self.memory.fill(key, MemoryEntry(meta, data, until, known), epoch)

    def _checked_file(
        self, key: str, meta: EntryMeta, handle: BinaryIO, expire_time: float | None, epoch: int
    ) -> CachedBody | None:
        known = file_id(handle)
        if known[1] != meta.size:
            handle.close()
            self._drop_corrupt(key, f"file of {known[1]} bytes, expected {meta.size}")
            return None
        checked = self._verified.holds(known, meta.etag)
        if meta.size <= READ_WHOLE_MAX_BYTES:
            with handle:
                data = handle.read()
            if not checked:
                if strong_etag(data) != meta.etag:
                    self._drop_corrupt(key, "file")
                    return None
                self._verified.add(known, meta.etag)
            self._remember(key, meta, data, known, expire_time, epoch)
            return CachedBody(meta, data=data)
        if not checked:
            if stream_etag(handle)[0] != meta.etag:
                handle.close()
                self._drop_corrupt(key, "file")
                return None
            handle.seek(0)
            self._verified.add(known, meta.etag)
        return CachedBody(meta, file=handle)

    def _drop_corrupt(self, key: str, what: str) -> None:
        log.warning("dropping corrupt cache entry %s: %s does not match its checksum", key, what)
        CACHE_CORRUPT.inc()
        self.delete(key)

    # --- writing -----------------------------------------------------------------------------------------

    def _new_meta(self, media_type: str, etag: str, size: int, ttl_s: int, headers: dict[str, str] | None) -> EntryMeta:
        """Return the metadata of a payload made now, fresh for ``ttl_s`` by the cache's clock."""
        now = self.clock()
        return EntryMeta(media_type, etag, now, now + ttl_s, size, headers or {}, clock=self.clock)

    def _expire_s(self, meta: EntryMeta) -> float:
        """Return the ``expire`` to give diskcache so that it stores the moment the entry's stale window ends.

        diskcache stores its system clock's now plus ``expire``: counted from the system clock here too, the time
        stored is that moment on the cache's clock, which `get` and `expire` read; with the system clock as the
        cache's it is ``ttl + keep_stale_s``, as ever.
        """
        return meta.fresh_until + self.keep_stale_s - time.time()

    def put(
        self,
        key: str,
        payload: bytes,
        *,
        media_type: str,
        ttl_s: int,
        headers: dict[str, str] | None = None,
    ) -> CachedBody:
        """Store ``payload`` under ``key`` and return it as a cached body."""
        meta = self._new_meta(media_type, strong_etag(payload), len(payload), ttl_s, headers)
        epoch = self.memory.epoch
        self._cache.set(key, payload, expire=self._expire_s(meta), tag=meta.to_tag())
        if len(payload) <= self.memory.max_entry_bytes:
            # diskcache counts its expiry from a moment after `_expire_s` read the clock: memory lets go first.
            expires_at = meta.fresh_until + self.keep_stale_s
            self._remember(key, meta, payload, self._value_file_id(key, meta), expires_at, epoch)
        else:
            self.memory.forget(key)
        self._enforce_size_limit()  # after remembering: what it evicts leaves memory too
        return CachedBody(meta, data=payload)

    def _value_file_id(self, key: str, meta: EntryMeta) -> FileId | None:
        """Return the identity of the value file just written under ``key``; None when it is inline (or gone)."""
        if meta.size < INLINE_MAX_BYTES:
            return None
        handle = self._cache.get(key, default=None, read=True)
        if handle is None or isinstance(handle, bytes):
            return None
        with handle:
            return file_id(handle)

    def uncached(
        self, payload: bytes, media_type: str, ttl_s: int, headers: dict[str, str] | None = None
    ) -> CachedBody:
        """Wrap a payload that could not be stored, so it can still be served with correct metadata."""
        return CachedBody(self._new_meta(media_type, strong_etag(payload), len(payload), ttl_s, headers), data=payload)

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        media_type: str,
        ttl_s: int,
        headers: dict[str, str] | None = None,
    ) -> EntryMeta:
        """Store the file at ``path`` under ``key`` without reading it whole; return its metadata.

        The file is hashed, then copied in chunks and hashed again as it is copied, so memory stays bounded however
        large it is and the bytes written are the ones its ETag names; this process then trusts the copy (it is not
        hashed again on first serve here, but is after a restart).
        """
        with path.open("rb") as source:
            etag, size = stream_etag(source)
        meta = self._new_meta(media_type, etag, size, ttl_s, headers)
        with path.open("rb") as source:
            reader = HashingReader(source, key, self._write_pause_s)
            self._cache.set(key, reader, read=True, expire=self._expire_s(meta), tag=meta.to_tag())
        self.memory.forget(key)  # the bytes are not at hand: a later read fills memory
        if reader.etag != meta.etag:
            self.delete(key)
            raise OSError(f"{path} changed while it was copied into the cache")
        self._remember_checked(key, meta)
        self._enforce_size_limit()
        return meta

    def _remember_checked(self, key: str, meta: EntryMeta) -> None:
        """Mark the file just stored under ``key`` as checked (its copy was hashed), unless it is inline."""
        if meta.size < INLINE_MAX_BYTES:
            return
        handle = self._cache.get(key, default=None, read=True)
        if handle is None or isinstance(handle, bytes):
            return
        with handle:
            known = file_id(handle)
        if known[1] == meta.size:
            self._verified.add(known, meta.etag)

    def _enforce_size_limit(self) -> None:
        """Cull until the cache is within its size limit; count what the limit pushed out."""
        limit = self._cache.size_limit
        if self._cache.volume() > limit:
            with self._cull_lock:
                # Entries past their stale window (by the cache's clock) go first, and are not evictions.
                self._cache.expire(now=self.clock())
                evicted = self._evict_oldest(limit)
            if evicted:
                CACHE_EVICTIONS.inc(evicted)
        CACHE_VOLUME.set(self.volume_bytes())

    def _evict_oldest(self, limit: int) -> int:
        """Delete the least recently stored entries until the volume is within ``limit``; return how many.

        Not diskcache's `cull`: it deletes ten at a time, which with a few large entries throws out the newest too.
        """
        evicted = 0
        while (excess := self._cache.volume() - limit) > 0:
            oldest = self._cache._sql(
                "SELECT key, size + COALESCE(length(value), 0) FROM Cache ORDER BY store_time LIMIT 100"
            ).fetchall()
            if not oldest:
                break
            freed = 0
            for key, size in oldest:
                evicted += bool(self._cache.delete(key))
                self.memory.forget(key)
                freed += size
                if freed >= excess:
                    break
        return evicted

    def delete(self, key: str) -> None:
        """Drop ``key`` if present, on disk and in memory."""
        self._cache.delete(key)
        self.memory.forget(key)  # after the disk: a read racing with the delete cannot refill it

    def reshare(self, keys: list[str]) -> None:
        """Share ``keys`` again where a tier is shared and lost them (blocking); here nothing is shared."""

    # --- housekeeping ------------------------------------------------------------------------------------

    def volume_bytes(self) -> int:
        """Return the cache's estimated size on disk: database pages, value files and the write-ahead log."""
        try:
            wal_bytes = os.stat(self.directory / "cache.db-wal").st_size
        except OSError:
            wal_bytes = 0
        return int(self._cache.volume()) + wal_bytes

    def __len__(self) -> int:
        """Return the number of entries, expired ones included."""
        return len(self._cache)

    def sweep(self) -> tuple[int, int]:
        """Remove what a killed process left behind; return (orphan files removed, dangling rows removed).

        Blocking; call at start-up, before anything writes. Orphan files are value files no row points to (a copy
        interrupted before its row was committed); dangling rows point to a file that is gone.
        """
        sql = self._cache._sql  # diskcache has no public listing of its value files
        referenced = {name for (name,) in sql("SELECT filename FROM Cache WHERE filename IS NOT NULL").fetchall()}
        orphans = 0
        for path in self.directory.glob("??/??/*.val"):
            name = path.relative_to(self.directory).as_posix()
            if name not in referenced:
                path.unlink(missing_ok=True)
                orphans += 1
        dangling = 0
        for name in referenced:
            if not (self.directory / name).exists():
                rows = sql("SELECT key FROM Cache WHERE filename = ?", (name,)).fetchall()
                for (key,) in rows:
                    self.delete(key)
                    dangling += 1
        if orphans or dangling:
            log.warning("cache sweep removed %d orphan file(s) and %d dangling entr(ies)", orphans, dangling)
        self._enforce_size_limit()
        return orphans, dangling

    def close(self) -> None:
        """Close the underlying database."""
        self._cache.close()


def _close(value: bytes | BinaryIO) -> None:
    """Close a value diskcache returned, when it is an open file."""
    if not isinstance(value, bytes):
        value.close()
