"""The disk cache's in-memory tier: small payloads just checked or written, so a warm hit needs no disk.

It only ever holds what the disk holds: the disk cache drops a key from memory on every delete, eviction, rewrite
or corrupt entry found, and an entry leaves memory no later than the disk forgets it. One process's memory does not
see another process change the cache directory (the service runs one worker per cache).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from service.infra.cache_entries import EntryMeta
from service.infra.integrity import FileId
from service.infra.metrics import CACHE_MEMORY_BYTES

# The tier's defaults (TESS_SERVICE_HOT_CACHE_MB, TESS_SERVICE_HOT_ENTRY_MAX_KB) and its count bound.
MEMORY_MAX_BYTES = 64 * 1024 * 1024
MEMORY_ENTRY_MAX_BYTES = 1024 * 1024
MEMORY_MAX_ENTRIES = 16_384
# What an entry costs besides its payload (metadata, key, dict slot), counted against the byte budget.
_MEMORY_ENTRY_OVERHEAD_BYTES = 512


@dataclass(frozen=True)
class MemoryEntry:
    """A payload held in memory, with what is needed to know it is still the disk's."""

    meta: EntryMeta
    data: bytes
    expires_at: float  # when the disk forgets the entry, or a moment before (by the cache's clock)
    file_id: FileId | None  # the value file it was read from or written to; None when inline in SQLite

    @property
    def cost(self) -> int:
        """Return the bytes the entry counts against the tier's budget."""
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
        self._entries: OrderedDict[str, MemoryEntry] = OrderedDict()
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

    def get(self, key: str, now: float) -> MemoryEntry | None:
        """Return the entry for ``key`` unless the disk would have forgotten it by ``now``."""
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

    def fill(self, key: str, entry: MemoryEntry, since_epoch: int) -> None:
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
