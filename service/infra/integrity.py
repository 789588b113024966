"""The disk cache's checksums: SHA-256 ETags, the files already checked this process, and a hashing copy reader.

Every cache entry's ETag is a SHA-256 prefix of its bytes, so that an entry can be checked against it when read.
Hashing a file costs ~0.7 ms per MB, so each file is hashed once per process and remembered by `FileId` (path, size,
mtime, inode): a file rewritten in place is checked again, and after a restart every file is checked again before it
is first served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from typing import BinaryIO

# Files are hashed in chunks of this size, so memory stays bounded however large they are.
HASH_CHUNK_BYTES = 16 * 1024 * 1024
# Files checked this process, remembered at most (~200 bytes each); past it the oldest are checked again.
VERIFIED_FILES_MAX = 100_000

# (path, size, mtime in ns, inode): a file's identity for "already checked"; any rewrite changes one of them.
FileId = tuple[str, int, int, int]

log = logging.getLogger(__name__)


def digest_etag(digest: hashlib._Hash) -> str:
    """Return the strong ETag that names the bytes fed to a SHA-256 ``digest``."""
    return '"' + digest.hexdigest()[:32] + '"'


def strong_etag(payload: bytes) -> str:
    """Return a strong ETag derived from the payload's bytes."""
    return digest_etag(hashlib.sha256(payload))


def stream_etag(source: BinaryIO) -> tuple[str, int]:
    """Return the ETag and size of what is left to read in ``source``, read in chunks (blocking)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(HASH_CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return digest_etag(digest), size


def file_id(handle: BinaryIO) -> FileId:
    """Return the identity of the open file ``handle``."""
    stat = os.fstat(handle.fileno())
    return (str(handle.name), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def file_unchanged(known: FileId) -> bool:
    """Return whether the file at ``known``'s path is still the one ``known`` names (one ``stat``, no data read)."""
    try:
        stat = os.stat(known[0])
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino) == known[1:]


class VerifiedFiles:
    """The cache files whose bytes this process has checked against their ETag (bounded, thread-safe)."""

    def __init__(self, max_entries: int = VERIFIED_FILES_MAX) -> None:
        self._max_entries = max_entries
        self._etags: dict[FileId, str] = {}
        self._lock = threading.Lock()

    def holds(self, known: FileId, etag: str) -> bool:
        """Return whether the file ``known`` was checked and found to hold the bytes ``etag`` names."""
        return self._etags.get(known) == etag

    def add(self, known: FileId, etag: str) -> None:
        """Remember that the file ``known`` holds the bytes ``etag`` names."""
        with self._lock:
            if len(self._etags) >= self._max_entries:
                del self._etags[next(iter(self._etags))]  # the oldest: it is merely checked again
            self._etags[known] = etag


class HashingReader:
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
        """Return the next chunk of the source, hashed on the way."""
        self._reads += 1
        if self._pause_s > 0 and self._reads == 2:
            log.warning("cache write of %s paused for %.1f s (test hook)", self._key, self._pause_s)
            time.sleep(self._pause_s)
        chunk = self._source.read(size)
        self.digest.update(chunk)
        return chunk

    @property
    def etag(self) -> str:
        """Return the ETag of what was read so far."""
        return digest_etag(self.digest)
