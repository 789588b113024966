"""Choosing a representation from ``?format=`` or the ``Accept`` header."""

from __future__ import annotations

from service.errors import NotAcceptable


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            # Sort key: highest quality first, then the client's own order.
            ranges.append((media.lower(), quality - position * 1e-6))
    return sorted(ranges, key=lambda item: -item[1])


def negotiate(explicit: str | None, accept: str | None, offers: dict[str, str]) -> str:
    """Return the chosen format name.

    ``offers`` maps format name → media type, in order of preference; an explicit ``?format=`` wins, a
    missing Accept or a wildcard gets the first offer, and an Accept that allows none of them is a 406.
    """
    if explicit is not None:
        return explicit
    if not accept:
        return next(iter(offers))
    for media, quality in _media_ranges(accept):
        if quality <= 0:
            continue
        if media in ("*/*", "*"):
            return next(iter(offers))
        for name, offered in offers.items():
            kind = offered.split("/")[0]
            if media == offered or media == f"{kind}/*":
                return name
    raise NotAcceptable(
        f"Accept '{accept}' allows none of {', '.join(offers.values())}; "
        f"ask for one of them or use ?format={'|'.join(offers)}."
    )
