"""TCE identifiers: parsing ExoMAST's ``sNNNN-sNNNN:TCE_n`` ids and resolving what a user typed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from service.errors import Conflict, InvalidRequest, NotFound

# ASCII digits only: \d would also accept other scripts' digits.
_FULL_ID = re.compile(r"^s([0-9]{1,4})-s([0-9]{1,4}):(?:TCE_)?([0-9]{1,4})$", re.IGNORECASE)
_SHORT_ID = re.compile(r"^(?:TCE_)?([0-9]{1,4})$", re.IGNORECASE)
# What the path parameter accepts, for request validation and the OpenAPI document.
TCE_ID_PATTERN = r"^([sS][0-9]{1,4}-[sS][0-9]{1,4}:)?([tT][cC][eE]_)?[0-9]{1,4}$"


@dataclass(frozen=True, order=True)
class TceRef:
    """One TCE of a target: the sector range of the search that found it and its number in that search."""

    first_sector: int
    last_sector: int
    number: int

    @property
    def sectors(self) -> str:
        """Return the sector range the way ExoMAST writes it, e.g. ``s0001-s0003``."""
        return f"s{self.first_sector:04d}-s{self.last_sector:04d}"

    @property
    def tce(self) -> str:
        """Return the TCE name within its search, e.g. ``TCE_1``."""
        return f"TCE_{self.number}"

    @property
    def id(self) -> str:
        """Return the full id, e.g. ``s0001-s0003:TCE_1``."""
        return f"{self.sectors}:{self.tce}"


def parse_tce_id(raw: str) -> TceRef | None:
    """Parse a full ExoMAST TCE id; None when ``raw`` is not one."""
    match = _FULL_ID.match(raw.strip())
    if match is None:
        return None
    first, last, number = (int(group) for group in match.groups())
    return TceRef(first, last, number)


def resolve_tce(available: Iterable[TceRef], requested: str, tic_id: int) -> TceRef:
    """Find the TCE a user means: a full id, or a short ``TCE_1``/``1`` when only one TCE has that number."""
    refs = sorted(available)
    full = parse_tce_id(requested)
    if full is not None:
        if full in refs:
            return full
        raise NotFound(
            f"TIC {tic_id} has no TCE {full.id}; it has {', '.join(r.id for r in refs) or 'none'}.",
            extensions={"available": [r.id for r in refs]},
        )
    short = _SHORT_ID.match(requested.strip())
    if short is None:
        raise InvalidRequest(
            f"'{requested}' is not a TCE id; use the full id from /tic/{tic_id}/tces (e.g. s0001-s0001:TCE_1) "
            "or a short one like TCE_1."
        )
    number = int(short.group(1))
    candidates = [r for r in refs if r.number == number]
    if not candidates:
        raise NotFound(
            f"TIC {tic_id} has no TCE_{number}; it has {', '.join(r.id for r in refs) or 'none'}.",
            extensions={"available": [r.id for r in refs]},
        )
    if len(candidates) > 1:
        raise Conflict(
            f"TCE_{number} of TIC {tic_id} is ambiguous: it was found by {len(candidates)} searches. "
            f"Use one of the full ids: {', '.join(r.id for r in candidates)}.",
            extensions={"candidates": [r.id for r in candidates]},
        )
    return candidates[0]
