"""A size-bounded disk cache of immutable byte payloads, each stored with its HTTP metadata and checked when read.

diskcache writes a large value to its own file and only then commits the row that points at it, so a crash
mid-write leaves at most an orphan file (swept at start-up), never a half-written entry that is later served. The
metadata (media type, ETag, freshness) rides in the entry's ``tag`` column, in the same row as the value.

Every entry's ETag is a SHA-256 prefix of its bytes, and `DiskCache.get` checks the bytes against it before
handing them out; an entry that does not match is dropped and reads as missing, so it is produced again. Inline
entries (at most `INLINE_MAX_BYTES`, in SQLite) are hashed on every read: ~40 µs at most. Hashing a file costs
~0.7 ms per MB, so each file is hashed once per process and remembered by (path, size, mtime, inode): a file
rewritten in place is checked again, and after a restart every file is checked again before it is first served.

In front of the disk sits a small in-memory tier (`MemoryTier`): payloads of at most ~1 MiB that were just checked
or written, so that a warm hit (`DiskCache.get_memory`) needs no worker thread, no SQLite and no hashing. It only
ever holds what the disk holds: every delete, eviction, rewrite or corrupt entry found drops the key from memory
too, and an entry leaves memory no later than diskcache forgets it. One process's memory does not see another
process change the cache directory (the service runs one worker per cache).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import diskcache
import orjson

from service.infra.metrics import CACHE_CORRUPT, CACHE_EVICTIONS, CACHE_MEMORY_BYTES, CACHE_READS, CACHE_VOLUME

# Payloads up to this size stay inside SQLite; larger ones become files that can be streamed.
INLINE_MAX_BYTES = 64 * 1024
# Payloads up to this size are read whole when fetched (one thread hop); larger ones are streamed.
READ_WHOLE_MAX_BYTES = 1024 * 1024
STREAM_CHUNK_BYTES = 1024 * 1024
HASH_CHUNK_BYTES = 16 * STREAM_CHUNK_BYTES
# Files checked this process, remembered at most (~200 bytes each); past it the oldest are checked again.
VERIFIED_FILES_MAX = 100_000
# SQLite's write-ahead log is checkpointed at about this size and cut back to it; the size limit keeps room for it.
WAL_SIZE_LIMIT_BYTES = 1024 * 1024
_WAL_CHECKPOINT_PAGES = WAL_SIZE_LIMIT_BYTES // 4096
# The in-memory tier's defaults (TESS_SERVICE_HOT_CACHE_MB, TESS_SERVICE_HOT_ENTRY_MAX_KB) and its count bound.
MEMORY_MAX_BYTES = 64 * 1024 * 1024
MEMORY_ENTRY_MAX_BYTES = 1024 * 1024
MEMORY_MAX_ENTRIES = 16_384
# What an entry costs besides its payload (metadata, key, dict slot), counted against the byte budget.
_MEMORY_ENTRY_OVERHEAD_BYTES = 512
_READ_MEMORY, _READ_DISK = (CACHE_READS.labels(tier) for tier in ("memory", "disk"))

log = logging.getLogger(__name__)


def _etag(digest: hashlib._Hash) -> str:
    return '"' + digest.hexdigest()[:32] + '"'


def strong_etag(payload: bytes) -> str:
    """Return a strong ETag derived from the payload's bytes."""
    return _etag(hashlib.sha256(payload))


@dataclass(frozen=True)
class EntryMeta:
    """What is known about a cached payload without reading it."""

    media_type: str
    etag: str
    created_at: float
    fresh_until: float
    size: int
    headers: dict[str, str] = field(default_factory=dict)

    def is_fresh(self, now: float | None = None) -> bool:
        """Return whether the entry may still be served without asking upstream."""
        return (time.time() if now is None else now) < self.fresh_until

    def max_age_s(self, now: float | None = None) -> int:
        """Return the seconds of freshness left, for ``Cache-Control: max-age``."""
        return max(0, int(self.fresh_until - (time.time() if now is None else now)))


@dataclass
class CachedBody:
    """A payload with its metadata: held in memory, or an open file to stream from.

    ``stale_reason`` is set when the payload is served past its freshness because upstream failed (or was made
    from data served that way): it says, in ASCII, what failed.
    """

    meta: EntryMeta
    data: bytes | None = None
    file: BinaryIO | None = None
    stale_reason: str | None = None

    def read(self) -> bytes:
        """Return the whole payload (blocking when file-backed)."""
        if self.data is not None:
            return self.data
        assert self.file is not None
        with self.file:
            return self.file.read()

    def chunks(self) -> Generator[bytes, None, None]:
        """Yield the payload in chunks (blocking when file-backed); closes the file at the end."""
        if self.data is not None:
            yield self.data
            return
        assert self.file is not None
        with self.file:
            while chunk := self.file.read(STREAM_CHUNK_BYTES):
                yield chunk

    def close(self) -> None:
        """Release the file handle, if any."""
        if self.file is not None:
            self.file.close()


# (path, size, mtime in ns, inode): a file's identity for "already checked"; any rewrite changes one of them.
_FileId = tuple[str, int, int, int]


class _VerifiedFiles:
    """The cache files whose bytes this process has checked against their ETag (bounded, thread-safe)."""

    def __init__(self, max_entries: int = VERIFIED_FILES_MAX) -> None:
        self._max_entries = max_entries
        self._etags: dict[_FileId, str] = {}
        self._lock = threading.Lock()

    def holds(self, file_id: _FileId, etag: str) -> bool:
        return self._etags.get(file_id) == etag

    def add(self, file_id: _FileId, etag: str) -> None:
        with self._lock:
            if len(self._etags) >= self._max_entries:
                del self._etags[next(iter(self._etags))]  # the oldest: it is merely checked again
            self._etags[file_id] = etag


def _file_id(handle: BinaryIO) -> _FileId:
    stat = os.fstat(handle.fileno())
    return (str(handle.name), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@dataclass(frozen=True)
class _MemoryEntry:
    meta: EntryMeta
    data: bytes
    expires_at: float  # when diskcache forgets the entry, or a moment before
    file_id: _FileId | None  # the value file it was read from or written to; None when inline in SQLite

    @property
    def cost(self) -> int:
        return len(self.data) + _MEMORY_ENTRY_OVERHEAD_BYTES


class MemoryTier:
    """Small payloads of the disk cache that were checked (or written) there, in memory: LRU, thread-safe.

    Bounded in entries and in bytes. A change to the disk (`forget`) drops the key and bumps an epoch: a fill
    that began before any change is not applied, so a reader that saw the disk before a delete or eviction
    cannot put the old entry back afterwards; and a fill never replaces a more recently written entry.
    """

    def __init__(
        self, max_bytes: int, max_entry_bytes: int = MEMORY_ENTRY_MAX_BYTES, max_entries: int = MEMORY_MAX_ENTRIES
    ) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _MemoryEntry] = OrderedDict()
        self._bytes = 0
        self._epoch = 0
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int:
        """Return the count of changes so far; pass it to `fill` (read before looking at the disk)."""
        return self._epoch

    @property
    def size_bytes(self) -> int:
        """Return the bytes held, payloads and per-entry overhead."""
        return self._bytes

    def __len__(self) -> int:
        """Return the number of entries held."""
        return len(self._entries)

    def get(self, key: str, now: float) -> _MemoryEntry | None:
        """Return the entry for ``key`` unless diskcache would have forgotten it by ``now``."""
        if not self._entries:  # disabled or empty: skip the lock
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry.expires_at:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return entry

    def fill(self, key: str, entry: _MemoryEntry, since_epoch: int) -> None:
        """Hold ``entry`` if it fits and nothing changed since ``since_epoch``; else drop ``key`` to be safe."""
        if len(entry.data) > self.max_entry_bytes:
            if key in self._entries:
                self.forget(key)
            return
        with self._lock:
            old = self._entries.get(key)
            if self._epoch != since_epoch:
                if old is not None:
                    self._remove(key)
                return
            if old is not None:
                if old.meta.created_at > entry.meta.created_at:
                    return  # a reader's older copy: the newer write stays
                self._remove(key)
            self._entries[key] = entry
            self._bytes += entry.cost
            while self._bytes > self.max_bytes or len(self._entries) > self.max_entries:
                self._remove(next(iter(self._entries)))
            CACHE_MEMORY_BYTES.set(self._bytes)

    def forget(self, key: str) -> None:
        """Drop ``key``: call after the disk entry was deleted or rewritten, never before."""
        with self._lock:
            self._epoch += 1
            if key in self._entries:
                self._remove(key)
                CACHE_MEMORY_BYTES.set(self._bytes)

    def _remove(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).cost


class _HashingReader:
    """The file-like object diskcache copies a file from: it hashes what is copied, so the copy can be checked.

    ``pause_s`` is a test hook (see `DiskCache`): it stalls the copy after its first chunk has been written.
    """

    def __init__(self, source: BinaryIO, key: str, pause_s: float) -> None:
        self._source = source
        self._key = key
        self._pause_s = pause_s
        self._reads = 0
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        self._reads += 1
        if self._pause_s > 0 and self._reads == 2:
            log.warning("cache write of %s paused for %.1f s (test hook)", self._key, self._pause_s)
            time.sleep(self._pause_s)
        chunk = self._source.read(size)
        self.digest.update(chunk)
        return chunk


class DiskCache:
    """Blocking cache API; callers run it in worker threads (see `service.infra.threads`).

    Entries outlive their freshness by ``keep_stale_s`` so that they can be served stale when MAST fails
    (`ArtifactStore`); the size limit evicts the least recently stored first, and is enforced after every write
    (diskcache itself culls at most ten entries per write, which one large file can outgrow).
    ``write_pause_s`` is a test hook for crash tests, 0 (inert) in production: every file copied into the cache
    stalls that long after its first 4 MiB. ``memory_max_bytes`` and ``memory_entry_max_bytes`` size the in-memory
    tier (0 turns it off).
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
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.keep_stale_s = keep_stale_s
        self.size_limit_bytes = size_limit_bytes
        self._write_pause_s = write_pause_s
        self._verified = _VerifiedFiles()
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
        entry = self.memory.get(key, time.time())
        if entry is None:
            return None
        if entry.file_id is not None:
            try:
                stat = os.stat(entry.file_id[0])
            except OSError:
                stat = None
            if stat is None or (stat.st_size, stat.st_mtime_ns, stat.st_ino) != entry.file_id[1:]:
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
        try:
            meta = EntryMeta(**orjson.loads(tag))
        except (TypeError, ValueError):
            # Metadata from another version of the service: the entry cannot be served correctly.
            if not isinstance(value, bytes):
                value.close()
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
        self, key: str, meta: EntryMeta, data: bytes, file_id: _FileId | None, expires_at: float | None, epoch: int
    ) -> None:
        """Offer a checked (or just written) payload to the in-memory tier, to be held until ``expires_at``."""
        if self.memory.max_bytes > 0 and len(data) <= self.memory.max_entry_bytes:
            until = float("inf") if expires_at is None else expires_at
            self.memory.fill(key, _MemoryEntry(meta, data, until, file_id), epoch)

    def _checked_file(
        self, key: str, meta: EntryMeta, handle: BinaryIO, expire_time: float | None, epoch: int
    ) -> CachedBody | None:
        file_id = _file_id(handle)
        if file_id[1] != meta.size:
            handle.close()
            self._drop_corrupt(key, f"file of {file_id[1]} bytes, expected {meta.size}")
            return None
        checked = self._verified.holds(file_id, meta.etag)
        if meta.size <= READ_WHOLE_MAX_BYTES:
            with handle:
                data = handle.read()
            if not checked:
                if strong_etag(data) != meta.etag:
                    self._drop_corrupt(key, "file")
                    return None
                self._verified.add(file_id, meta.etag)
            self._remember(key, meta, data, file_id, expire_time, epoch)
            return CachedBody(meta, data=data)
        if not checked:
            digest = hashlib.sha256()
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
            if _etag(digest) != meta.etag:
                handle.close()
                self._drop_corrupt(key, "file")
                return None
            handle.seek(0)
            self._verified.add(file_id, meta.etag)
        return CachedBody(meta, file=handle)

    def _drop_corrupt(self, key: str, what: str) -> None:
        log.warning("dropping corrupt cache entry %s: %s does not match its checksum", key, what)
        CACHE_CORRUPT.inc()
        self.delete(key)

    # --- writing -----------------------------------------------------------------------------------------

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
        now = time.time()
        meta = EntryMeta(
            media_type=media_type,
            etag=strong_etag(payload),
            created_at=now,
            fresh_until=now + ttl_s,
            size=len(payload),
            headers=headers or {},
        )
        epoch = self.memory.epoch
        self._cache.set(key, payload, expire=ttl_s + self.keep_stale_s, tag=self._tag(meta))
        if len(payload) <= self.memory.max_entry_bytes:
            # diskcache counts its expiry from a moment after `now`: memory lets go first.
            expires_at = now + ttl_s + self.keep_stale_s
            self._remember(key, meta, payload, self._value_file_id(key, meta), expires_at, epoch)
        else:
            self.memory.forget(key)
        self._enforce_size_limit()  # after remembering: what it evicts leaves memory too
        return CachedBody(meta, data=payload)

    def _value_file_id(self, key: str, meta: EntryMeta) -> _FileId | None:
        """Return the identity of the value file just written under ``key``; None when it is inline (or gone)."""
        if meta.size < INLINE_MAX_BYTES:
            return None
        handle = self._cache.get(key, default=None, read=True)
        if handle is None or isinstance(handle, bytes):
            return None
        with handle:
            return _file_id(handle)

    @staticmethod
    def _tag(meta: EntryMeta) -> str:
        return orjson.dumps(meta.__dict__).decode()

    @staticmethod
    def uncached(payload: bytes, media_type: str, ttl_s: int, headers: dict[str, str] | None = None) -> CachedBody:
        """Wrap a payload that could not be stored, so it can still be served with correct metadata."""
        now = time.time()
        meta = EntryMeta(media_type, strong_etag(payload), now, now + ttl_s, len(payload), headers or {})
        return CachedBody(meta, data=payload)

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
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as source:
            while chunk := source.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
        now = time.time()
        meta = EntryMeta(
            media_type=media_type,
            etag=_etag(digest),
            created_at=now,
            fresh_until=now + ttl_s,
            size=size,
            headers=headers or {},
        )
        with path.open("rb") as source:
            reader = _HashingReader(source, key, self._write_pause_s)
            self._cache.set(key, reader, read=True, expire=ttl_s + self.keep_stale_s, tag=self._tag(meta))
        self.memory.forget(key)  # the bytes are not at hand: a later read fills memory
        if _etag(reader.digest) != meta.etag:
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
            file_id = _file_id(handle)
        if file_id[1] == meta.size:
            self._verified.add(file_id, meta.etag)

    def _enforce_size_limit(self) -> None:
        """Cull until the cache is within its size limit; count what the limit pushed out."""
        limit = self._cache.size_limit
        if self._cache.volume() > limit:
            with self._cull_lock:
                self._cache.expire()  # entries past their stale window go first, and are not evictions
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
