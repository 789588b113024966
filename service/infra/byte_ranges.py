"""Single byte ranges (RFC 9110 §14): what part of a representation a ``Range`` header asks for, if one part.

Pure functions. Only what a browser needs to seek a ``<video>`` and resume a download is served partially: one
range, ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``. Anything else is answered whole, which the RFC allows a server
to do with any ``Range``: several ranges (multipart/byteranges would buy nothing a client cannot get with several
requests), another unit, a malformed header, or an ``If-Range`` that does not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["UNSATISFIABLE", "ByteRange", "if_range_holds", "requested_range"]

# RFC 9110 §14.1.1: int-range = first-pos "-" [ last-pos ], suffix-range = "-" suffix-length; OWS around the spec.
_ONE_RANGE = re.compile(r"[ \t]*([0-9]*)-([0-9]*)[ \t]*")
# Numbers longer than this are past any representation (and Python refuses int() of 4,300+ digits).
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS

UNSATISFIABLE: Final = "unsatisfiable"


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first`` to ``last`` inclusive of a representation of ``size`` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        """Return the number of bytes in the range."""
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        """Return the ``Content-Range`` of a 206 carrying this range."""
        return f"bytes {self.first}-{self.last}/{self.size}"


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else _HUGE


def requested_range(header: str | None, size: int) -> ByteRange | Literal["unsatisfiable"] | None:
    """Return the one range ``header`` asks for, `UNSATISFIABLE` (a 416), or None: answer with the whole.

    A range reaching past the end is cut at the end; one starting past it, or a suffix of 0 bytes, cannot be
    satisfied. An empty representation is always answered whole.
    """
    if header is None or size <= 0:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _ONE_RANGE.fullmatch(spec)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:  # suffix-range: the last n bytes
        if not last_text:
            return None
        suffix = _number(last_text)
        if suffix == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size - 1, size)
    first = _number(first_text)
    last = _number(last_text) if last_text else None
    if last is not None and last < first:
        return None  # not a valid range-spec: the header is ignored
    if first >= size:
        return UNSATISFIABLE
    return ByteRange(first, size - 1 if last is None else min(last, size - 1), size)


def if_range_holds(if_range: str | None, etag: str) -> bool:
    """Return whether a ``Range`` may be honoured given ``If-Range`` (RFC 9110 §13.1.5).

    Without ``If-Range``, yes. With an entity tag, only when it is strongly equal to ``etag``. With a date, no:
    these answers carry no ``Last-Modified`` to compare it with, so the whole representation is sent.
    """
    if if_range is None:
        return True
    candidate = if_range.strip()
    return not candidate.startswith("W/") and not etag.startswith("W/") and candidate == etag
