"""Query parameters shared by the routes, grouped into dependencies (as titiler groups them).

Each group is an ``async def`` dependency returning a small dataclass: FastAPI flattens the group's parameters into
the route's OpenAPI parameters, and runs a plain ``def`` dependency in a worker thread (a hop per request).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

from service.deps import ServicesDep, TicIdDep
from service.errors import InvalidRequest
from service.services.cutouts import CutoutArgs
from service.services.targets import Target, TargetSource


def described(description: str, example: tuple[str, str, Any], **constraints: Any) -> Any:
    """Return a query parameter with its description and one named example (what Swagger UI shows)."""
    name, summary, value = example
    return Query(description=description, openapi_examples={name: {"summary": summary, "value": value}}, **constraints)


MAX_WAIT_S = 600.0
# BTJD bounds far outside any mission time, so windows stay arithmetic-safe (a span of 1e308 overflowed).
MIN_BTJD, MAX_BTJD = -1e5, 1e6
BTJD_RANGE: dict[str, Any] = {"ge": MIN_BTJD, "le": MAX_BTJD, "allow_inf_nan": False}
RA_RANGE: dict[str, Any] = {"ge": 0, "lt": 360, "allow_inf_nan": False}
DEC_RANGE: dict[str, Any] = {"ge": -90, "le": 90, "allow_inf_nan": False}
# TESScut cuts at most 10,000 pixels: 100 × 100.
SIZE_RANGE_PX: dict[str, Any] = {"ge": 1, "le": 100}

Ra = Annotated[
    float,
    described("Right ascension, degrees (ICRS).", ("weird", "TIC 214568914", 340.8004), **RA_RANGE),
]
Dec = Annotated[
    float,
    described("Declination, degrees (ICRS).", ("weird", "TIC 214568914", -36.3439), **DEC_RANGE),
]
OptionalRa = Annotated[
    float | None,
    described(
        "Right ascension, degrees; overrides the TIC's own position (give `dec` too).",
        ("weird", "TIC 214568914", 340.8004),
        **RA_RANGE,
    ),
]
OptionalDec = Annotated[
    float | None,
    described(
        "Declination, degrees; overrides the TIC's own position (give `ra` too).",
        ("weird", "TIC 214568914", -36.3439),
        **DEC_RANGE,
    ),
]
Sector = Annotated[
    int | None,
    described(
        "TESS sector; default: the latest sector that observed the target.", ("first", "Sector 1", 1), ge=1, le=999
    ),
]
Size = Annotated[
    int,
    described(
        "Cutout side in pixels (21″ each); at most 100, i.e. TESScut's 10,000-pixel limit.",
        ("tutorial", "The tutorial's 50×50", 50),
        **SIZE_RANGE_PX,
    ),
]
Wait = Annotated[
    float | None,
    described(
        "Seconds to wait for a cutout that is not cached yet before answering 202 with a job to poll "
        "(default 60; 0 answers at once).",
        ("now", "Do not wait", 0),
        ge=0,
        le=MAX_WAIT_S,
        allow_inf_nan=False,
    ),
]
Start = Annotated[
    float,
    described(
        "Window start, BTJD (BJD − 2457000): the movie starts at the frame nearest to it. Not after "
        "`end` (422); the window may hold at most TESS_SERVICE_MOVIE_MAX_FRAMES frames and "
        "TESS_SERVICE_MOVIE_MAX_OUTPUT_MB of pixels (422 otherwise).",
        ("dip", "The day of the 'weird' dip", 1334.0),
        **BTJD_RANGE,
    ),
]
End = Annotated[
    float,
    described(
        "Window end, BTJD: the movie ends at the frame nearest to it (inclusive). Not before `start`.",
        ("dip", "The day of the 'weird' dip", 1335.0),
        **BTJD_RANGE,
    ),
]


def check_window(start: float | None, end: float | None) -> None:
    """Refuse a window that runs backwards."""
    if start is not None and end is not None and start > end:
        raise InvalidRequest(f"start ({start}) is after end ({end}); the window must run forward in time.")


@dataclass(frozen=True)
class OptionalWindow:
    """A BTJD window whose ends are optional (None: unbounded), start not after end."""

    start_btjd: float | None
    end_btjd: float | None


Doc = tuple[str, tuple[str, str, Any]]  # a parameter's description and its one named example (name, summary, value)


def optional_window(start: Doc, end: Doc, **constraints: Any) -> Callable[..., Awaitable[OptionalWindow]]:
    """Return a dependency that reads an optional ``start``/``end`` window, documented by ``start`` and ``end``."""

    async def window(
        start: Annotated[float | None, described(*start, **constraints)] = None,
        end: Annotated[float | None, described(*end, **constraints)] = None,
    ) -> OptionalWindow:
        check_window(start, end)
        return OptionalWindow(start, end)

    return window


async def position(ra: Ra, dec: Dec) -> Target:
    """Return the position the query names."""
    return Target(ra, dec)


async def position_override(ra: OptionalRa = None, dec: OptionalDec = None) -> Target | None:
    """Return the position that overrides a TIC's own, or None; half of one (ra without dec) is refused."""
    if (ra is None) != (dec is None):
        raise InvalidRequest("Give both ra and dec, or neither (the TIC's own position is used).")
    return Target(ra, dec) if ra is not None and dec is not None else None


async def cutout_args(sector: Sector = None, size: Size = 50, wait: Wait = None) -> CutoutArgs:
    """Return the cutout parameters."""
    return CutoutArgs(sector, size, wait)


PositionDep = Annotated[Target, Depends(position)]
PositionOverrideDep = Annotated[Target | None, Depends(position_override)]
CutoutArgsDep = Annotated[CutoutArgs, Depends(cutout_args)]


@dataclass(frozen=True)
class CutoutSource:
    """Where a cutout is centred (resolved when planning asks), and the URL of that cutout.

    A TIC's cutout is ``/tic/{tic_id}/cutout`` (with an explicit position, another cutout); a position's is
    ``/cutout?ra=…&dec=…``. Products made from the cutout point to it while their job waits for it.
    """

    target: TargetSource
    cutout_path: str


async def tic_source(tic_id: TicIdDep, services: ServicesDep, position: PositionOverrideDep) -> CutoutSource:
    """Return the cutout source of a TIC, at its own position or an explicit one."""
    at = f"?ra={position.ra_deg}&dec={position.dec_deg}" if position is not None else ""
    return CutoutSource(services.targets.of_tic(tic_id, position), f"/tic/{tic_id}/cutout{at}")


async def position_source(position: PositionDep, services: ServicesDep) -> CutoutSource:
    """Return the cutout source of a position given outright."""
    return CutoutSource(services.targets.at(position), f"/cutout?ra={position.ra_deg}&dec={position.dec_deg}")


TicSourceDep = Annotated[CutoutSource, Depends(tic_source)]
PositionSourceDep = Annotated[CutoutSource, Depends(position_source)]
