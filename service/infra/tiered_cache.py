"""`DiskCache` with the shared tier behind it: what one replica stores, every replica can read (opt-in).

Reads go memory, then this replica's disk, then the shared tier; an entry found there is checked against its ETag,
kept on the local disk (with the metadata it was shared with: same ETag, same freshness, so every replica answers
the same validators) and served from there. Large bodies are streamed from the object store into a file here, never
held whole. Writes go to the local disk first, as ever, then to the shared tier; a shared tier that is down only
means the entry stays local (`SharedTier` never raises). Blocking, like `DiskCache`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.infra.cache import DiskCache
from service.infra.cache_entries import CachedBody, EntryMeta
from service.infra.integrity import digest_etag, strong_etag
from service.infra.metrics import SHARED_TIER_READS
from service.infra.shared_tier import LocalWriteFailed, SharedTier

log = logging.getLogger(__name__)

INCOMING_DIR = "incoming"  # under the cache directory: bodies being copied in from the object store


class TieredCache(DiskCache):
    """A replica's disk cache in front of the ``shared`` tier; see the module's doc."""

    def __init__(self, directory: Path, *, shared: SharedTier, **options: Any) -> None:
        super().__init__(directory, **options)
        self.shared = shared
        self._incoming = directory / INCOMING_DIR
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._locks_guard = threading.Lock()
        shutil.rmtree(self._incoming, ignore_errors=True)  # copies a killed process left half-done

    def get(self, key: str) -> CachedBody | None:
        """Return the entry from this replica's disk, else from the shared tier (checked, then kept here).

        One thread at a time copies a given key from the shared tier; the others wait for it and read it here
        (ten requests for a new cutout made one copy, not ten writers of one key contending for the disk cache).
        """
        found = super().get(key)
        if found is not None:
            return found
        with self._copying(key):
            found = super().get(key)
            return found if found is not None else self._from_shared(key)

    @contextmanager
    def _copying(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` (made on first use, dropped with its last holder)."""
        with self._locks_guard:
            lock, holders = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, holders + 1)
        try:
            with lock:
                yield
        finally:
            with self._locks_guard:
                lock, holders = self._locks[key]
                if holders == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, holders - 1)

    def _from_shared(self, key: str) -> CachedBody | None:
        record = self.shared.fetch(key)
        if record is None:
            SHARED_TIER_READS.labels("miss").inc()
            return None
        try:
            meta = EntryMeta.from_tag(record.tag, self.clock)
        except (TypeError, ValueError):
            SHARED_TIER_READS.labels("unreadable").inc()
            return None  # written by another version of the service
        if meta.fresh_until + self.keep_stale_s <= self.clock():
            SHARED_TIER_READS.labels("miss").inc()
            return None
        try:
            if record.data is not None:
                kept = self._keep_body(key, meta, record.tag, record.data)
            else:
                kept = record.blob is not None and self._keep_blob(key, meta, record.tag, record.blob)
        except (OSError, sqlite3.Error, LocalWriteFailed) as error:
            # This replica's disk failed (full, read-only): a miss, made again upstream; the shared entry is fine.
            log.warning("could not keep shared cache entry %s here: %s", key, error)
            SHARED_TIER_READS.labels("local-error").inc()
            return None
        SHARED_TIER_READS.labels("hit" if kept else "corrupt").inc()
        return super().get(key) if kept else None

    def _keep_body(self, key: str, meta: EntryMeta, tag: str, data: bytes) -> bool:
        if len(data) != meta.size or strong_etag(data) != meta.etag:
            log.warning("shared cache entry %s does not match its checksum: dropped", key)
            self.shared.delete(key)
            return False
        self._cache.set(key, data, expire=self._expire_s(meta), tag=tag)
        self._enforce_size_limit()
        return True

    def _keep_blob(self, key: str, meta: EntryMeta, tag: str, blob: str) -> bool:
        digest = hashlib.sha256()
        self._incoming.mkdir(exist_ok=True)  # diskcache prunes directories it finds empty
        # A file of its own per read: concurrent reads of one key must not write into each other's copy.
        handle, name = tempfile.mkstemp(dir=self._incoming, prefix="shared-")
        part = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:

                def write(chunk: bytes) -> None:
                    digest.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as error:
                        raise LocalWriteFailed(str(error)) from error

                copied = self.shared.copy_blob(blob, write)
            if not copied or part.stat().st_size != meta.size or digest_etag(digest) != meta.etag:
                if copied:
                    log.warning("shared cache object %s does not match its checksum: dropped", blob)
                    self.shared.delete(key)
                return False
            with part.open("rb") as source:
                self._cache.set(key, source, read=True, expire=self._expire_s(meta), tag=tag)
        finally:
            part.unlink(missing_ok=True)
        self._enforce_size_limit()
        return True

    def put(
        self, key: str, payload: bytes, *, media_type: str, ttl_s: int, headers: dict[str, str] | None = None
    ) -> CachedBody:
        """Store ``payload`` here, then share it (a shared tier that is down only skips the sharing)."""
        body = super().put(key, payload, media_type=media_type, ttl_s=ttl_s, headers=headers)
        self.shared.store(key, body.meta.to_tag(), body.meta.etag, self._expire_s(body.meta), data=payload)
        return body

    def put_file(
        self, key: str, path: Path, *, media_type: str, ttl_s: int, headers: dict[str, str] | None = None
    ) -> EntryMeta:
        """Store the file here, then share it (its object uploaded from the file, in parts)."""
        meta = super().put_file(key, path, media_type=media_type, ttl_s=ttl_s, headers=headers)
        self.shared.store(key, meta.to_tag(), meta.etag, self._expire_s(meta), path=path)
        return meta

    def reshare(self, keys: list[str]) -> None:
        """Share each of ``keys`` again from this disk when the shared tier has lost it (its Redis flushed).

        A worker that finds a cutout on its own disk must not assume the replicas can read it too.
        """
        for key in keys:
            if self.shared.fetch(key) is not None:
                continue
            found = super().get(key)
            if found is None:
                continue
            meta, expire_s = found.meta, self._expire_s(found.meta)
            try:
                if found.file is not None:
                    self.shared.store(key, meta.to_tag(), meta.etag, expire_s, path=Path(found.file.name))
                else:
                    self.shared.store(key, meta.to_tag(), meta.etag, expire_s, data=found.data)
            finally:
                found.close()
            log.info("shared cache entry %s shared again from this disk", key)

    def delete(self, key: str) -> None:
        """Drop ``key`` here and from the shared tier."""
        super().delete(key)
        self.shared.delete(key)

    def close(self) -> None:
        """Close the disk cache and the shared tier's connections."""
        super().close()
        self.shared.close()
