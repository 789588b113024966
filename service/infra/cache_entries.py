"""What the disk cache hands out: an entry's metadata (`EntryMeta`) and its payload (`CachedBody`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, fields
from typing import Any, BinaryIO

import orjson

STREAM_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class EntryMeta:
    """What is known about a cached payload without reading it.

    ``clock`` is the clock of the cache that made it: freshness is judged by it, so a test that moves the cache's
    clock moves every entry's age with it. It is not stored, and not compared.
    """

    media_type: str
    etag: str
    created_at: float
    fresh_until: float
    size: int
    headers: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    def is_fresh(self, now: float | None = None) -> bool:
        """Return whether the entry may still be served without asking upstream."""
        return (self.clock() if now is None else now) < self.fresh_until

    def max_age_s(self, now: float | None = None) -> int:
        """Return the seconds of freshness left, for ``Cache-Control: max-age``."""
        return max(0, int(self.fresh_until - (self.clock() if now is None else now)))

    def to_tag(self) -> str:
        """Return the metadata as the JSON stored beside the payload (everything but the clock)."""
        return orjson.dumps({f.name: getattr(self, f.name) for f in fields(self) if f.name != "clock"}).decode()

    @classmethod
    def from_tag(cls, tag: str, clock: Callable[[], float]) -> EntryMeta:
        """Return the metadata stored as ``tag``; TypeError or ValueError when it is not this version's."""
        stored: dict[str, Any] = orjson.loads(tag)
        return cls(**stored, clock=clock)


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

    def chunks(self, first: int = 0, length: int | None = None) -> Generator[bytes, None, None]:
        """Yield the payload, or ``length`` bytes of it from byte ``first``, in chunks; closes the file at the end.

        Blocking when file-backed: the file is read from ``first`` (a seek), a chunk at a time, never whole.
        """
        if self.data is not None:
            whole = first == 0 and (length is None or length >= len(self.data))
            yield self.data if whole else self.data[first : None if length is None else first + length]
            return
        assert self.file is not None
        with self.file:
            self.file.seek(first)
            remaining = self.meta.size - first if length is None else length
            while remaining > 0 and (chunk := self.file.read(min(STREAM_CHUNK_BYTES, remaining))):
                remaining -= len(chunk)
                yield chunk

    def close(self) -> None:
        """Release the file handle, if any."""
        if self.file is not None:
            self.file.close()
