"""A size-bounded disk cache of immutable byte payloads, each stored with its HTTP metadata.

diskcache writes a large value to its own file and only then commits the row that points at it, so a crash
mid-write leaves at most an orphan file, never a half-written entry that is later served. The metadata
(media type, ETag, freshness) rides in the entry's ``tag`` column, in the same row as the value.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import diskcache
import orjson

# Payloads up to this size stay inside SQLite; larger ones become files that can be streamed.
INLINE_MAX_BYTES = 64 * 1024
# Payloads up to this size are read whole when fetched (one thread hop); larger ones are streamed.
READ_WHOLE_MAX_BYTES = 1024 * 1024
STREAM_CHUNK_BYTES = 1024 * 1024


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
    """A payload with its metadata: held in memory, or an open file to stream from."""

    meta: EntryMeta
    data: bytes | None = None
    file: BinaryIO | None = None

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


class DiskCache:
    """Blocking cache API; callers run it in worker threads (see `service.infra.threads`)."""

    def __init__(self, directory: Path, *, size_limit_bytes: int, keep_stale_s: int = 7 * 86400) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        # Entries outlive their freshness by `keep_stale_s`, for serving stale when MAST fails (planned);
        # the size limit evicts the least recently stored first.
        self.keep_stale_s = keep_stale_s
        self._cache = diskcache.Cache(
            str(directory),
            size_limit=size_limit_bytes,
            disk_min_file_size=INLINE_MAX_BYTES,
            eviction_policy="least-recently-stored",
        )

    def get(self, key: str) -> CachedBody | None:
        """Return the entry for ``key`` (fresh or not), or None."""
        value, tag = self._cache.get(key, default=None, read=True, tag=True)
        if value is None:
            return None
        try:
            meta = EntryMeta(**orjson.loads(tag))
        except (TypeError, ValueError):
            # Metadata from another version of the service: the entry cannot be served correctly.
            if not isinstance(value, bytes):
                value.close()
            self._cache.delete(key)
            return None
        if isinstance(value, bytes):
            return CachedBody(meta, data=value)
        if meta.size <= READ_WHOLE_MAX_BYTES:
            with value:
                return CachedBody(meta, data=value.read())
        return CachedBody(meta, file=value)

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
        self._cache.set(key, payload, expire=ttl_s + self.keep_stale_s, tag=self._tag(meta))
        return CachedBody(meta, data=payload)

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

        The file is hashed and copied in chunks, so memory stays bounded however large the file is.
        """
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as source:
            while chunk := source.read(STREAM_CHUNK_BYTES * 16):
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
            self._cache.set(key, source, read=True, expire=ttl_s + self.keep_stale_s, tag=self._tag(meta))
        return meta

    def delete(self, key: str) -> None:
        """Drop ``key`` if present."""
        self._cache.delete(key)

    def volume_bytes(self) -> int:
        """Return the cache's estimated size on disk."""
        return int(self._cache.volume())

    def close(self) -> None:
        """Close the underlying database."""
        self._cache.close()
