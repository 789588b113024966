"""Choosing a representation from ``?format=`` or the ``Accept`` header (RFC 9110 §12.5.1)."""

from __future__ import annotations

import math

from service.errors import NotAcceptable


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """Return (media range, quality) pairs; a range with a malformed quality is ignored, as RFC 9110 allows."""
    ranges = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = math.nan
        if media and math.isfinite(quality) and 0 <= quality <= 1:
            ranges.append((media.lower(), quality))
    return ranges


def _quality(offered: str, ranges: list[tuple[str, float]]) -> float:
    """Return the quality of the most specific range matching ``offered`` (exact > type/* > */*), else 0."""
    kind = offered.split("/")[0]
    for candidate in (offered, f"{kind}/*", "*/*"):
        matches = [quality for media, quality in ranges if media == candidate]
        if matches:
            return max(matches)
    return 0.0


def negotiate(explicit: str | None, accept: str | None, offers: dict[str, str]) -> str:
    """Return the chosen format name.

    ``offers`` maps format name → media type, in the server's order of preference, which breaks ties. An
    explicit ``?format=`` wins; no Accept header gets the first offer; an Accept that allows none is a 406.
    """
    if explicit is not None:
        return explicit
    if not accept:
        return next(iter(offers))
    ranges = _media_ranges(accept)
    scored = [(_quality(media_type, ranges), -index, name) for index, (name, media_type) in enumerate(offers.items())]
    best_quality, _, best = max(scored)
    if best_quality <= 0:
        raise NotAcceptable(
            f"Accept '{accept}' allows none of {', '.join(offers.values())}; "
            f"ask for one of them or use ?format={'|'.join(offers)}."
        )
    return best
