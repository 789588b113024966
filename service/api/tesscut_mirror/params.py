"""The TESScut mirror's parameters, parsed by hand, and the errors for what it refuses.

TESScut answers bad input with a 400 and a ``msg``, not with FastAPI's 422, so FastAPI validates nothing here: each
operation's dependency (`sector_query`, `astrocut_query`) reads the query string and the POST form alike, the form
winning, and serves the GET and POST routes of its path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from service.errors import ServiceError
from service.problem_documents import answered_with
from service.services.tesscut_mirror import MAX_CUTOUT_PIXELS, PIXEL_SCALE_DEG, MirrorCutout

PREFIX = "/tesscut/api/v0.1"  # astroquery's TESScut base URL, on this service
MAX_FORM_BYTES = 16 * 1024  # astroquery's forms are ~100 bytes
DEFAULT_CUTOUT_SIZE = 5.0  # TESScut's default x and y
MAX_RADIUS_DEG = 180.0
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_ANGLE = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*", re.IGNORECASE)
_ANGLE_UNITS_DEG = {"": 1.0, "d": 1.0, "deg": 1.0, "m": 1.0 / 60.0, "s": 1.0 / 3600.0}
_PIXEL_UNITS = ("px", "pixel", "pixels")


@answered_with(400)
class TesscutBadRequest(ServiceError):
    """A parameter TESScut would reject; the problem carries TESScut's ``msg`` too."""

    title, slug = "Bad request", "tesscut-bad-request"

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"msg": message})


@answered_with(413)
class FormTooLarge(ServiceError):
    """A POST body larger than any TESScut form."""

    title, slug = "Request body too large", "body-too-large"

    def __init__(self) -> None:
        message = f"The form body is larger than {MAX_FORM_BYTES} bytes; TESScut's parameters fit in far less."
        super().__init__(message, extensions={"msg": message})


@answered_with(501)
class MovingTargetsNotSupported(ServiceError):
    """Moving-target cutouts are not mirrored yet."""

    title, slug = "Not implemented", "not-implemented"

    def __init__(self) -> None:
        message = (
            "Moving targets are not supported by this mirror yet; ask MAST's TESScut "
            "(https://mast.stsci.edu/tesscut/) for moving_target/sector and moving_target/astrocut."
        )
        super().__init__(message, extensions={"msg": message})


async def _form_body(request: Request) -> bytes:
    """Return the POST body, refusing (413) one larger than `MAX_FORM_BYTES` before and while reading it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not re.fullmatch(r"[0-9]+", declared.strip()):
            raise TesscutBadRequest(f"Invalid Content-Length: {declared!r}")
        if int(declared) > MAX_FORM_BYTES:
            raise FormTooLarge()
    body = bytearray()
    async for chunk in request.stream():  # a chunked body has no Content-Length: count as it arrives
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge()
    return bytes(body)


async def request_params(request: Request) -> dict[str, str]:
    """Return the query-string and (POST) form parameters, the form winning; the first of repeated values."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, value)
    if request.method == "POST":
        body = await _form_body(request)
        content_type = request.headers.get("content-type", "")
        if body and ("form-urlencoded" in content_type or not content_type):
            form: dict[str, str] = {}
            for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                form.setdefault(name, value)
            params.update(form)
    return params


def parse_number(params: dict[str, str], name: str, *, default: float | None = None) -> float:
    """Return a finite number parameter; 400 when it is missing (without a default) or malformed."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        if default is None:
            raise TesscutBadRequest(f"Missing required parameter: {name}")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TesscutBadRequest(f"Invalid {name}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise TesscutBadRequest(f"Invalid {name}: {raw!r}")
    return value


def parse_position(params: dict[str, str]) -> tuple[float, float]:
    """Return (RA in [0, 360), Dec) in degrees."""
    ra = parse_number(params, "ra")
    dec = parse_number(params, "dec")
    if not -90.0 <= dec <= 90.0:
        raise TesscutBadRequest(f"Invalid dec: {dec} is outside [-90, 90]")
    return ra % 360.0, dec


def parse_radius_px(raw: str | None) -> float:
    """Return the ``sector`` radius in pixels: bare degrees, or a number with unit d, m, s or px."""
    if raw is None or raw.strip() == "":
        return 0.0
    found = _ANGLE.fullmatch(raw)
    if found is None:
        raise TesscutBadRequest(f"Invalid radius: {raw!r}")
    value, unit = float(found.group(1)), found.group(2).lower()
    if not math.isfinite(value):  # "1e400" matches the number pattern and overflows to inf
        raise TesscutBadRequest(f"Invalid radius: {raw!r}")
    if value < 0:
        raise TesscutBadRequest(f"Invalid radius: {raw!r} is negative")
    if unit == "px":
        radius_px = value
    elif unit in _ANGLE_UNITS_DEG:
        radius_px = value * _ANGLE_UNITS_DEG[unit] / PIXEL_SCALE_DEG
    else:
        raise TesscutBadRequest(f"Invalid radius unit {unit!r}: use d, m, s or px")
    # Past 180 degrees a radius covers the whole sky already; a larger number only risks upstream overflow.
    return min(radius_px, MAX_RADIUS_DEG / PIXEL_SCALE_DEG)


def parse_cutout_size(params: dict[str, str]) -> tuple[int, int]:
    """Return (nx, ny) in pixels from ``x`` (columns), ``y`` (rows) and ``units`` (px, or d, m, s)."""
    units = (params.get("units") or "px").strip().lower()
    x = parse_number(params, "x", default=DEFAULT_CUTOUT_SIZE)
    y = parse_number(params, "y", default=DEFAULT_CUTOUT_SIZE)
    if x <= 0 or y <= 0:
        raise TesscutBadRequest("Invalid cutout size: x and y must be positive")
    if units in _PIXEL_UNITS:
        sizes = (round(x), round(y))
    elif units in _ANGLE_UNITS_DEG and units:
        # An angular size covers at least that much sky: whole 21" pixels, rounded up.
        scale = _ANGLE_UNITS_DEG[units] / PIXEL_SCALE_DEG
        if not math.isfinite(x * scale * y * scale):
            raise TesscutBadRequest(
                f"Requested cutout of {x} x {y} {units} exceeds the maximum of {MAX_CUTOUT_PIXELS:,} pixels."
            )
        sizes = (math.ceil(x * scale - 1e-9), math.ceil(y * scale - 1e-9))
    else:
        raise TesscutBadRequest(f"Invalid units {units!r}: use px or d")
    nx, ny = max(1, sizes[0]), max(1, sizes[1])
    if nx * ny > MAX_CUTOUT_PIXELS:
        raise TesscutBadRequest(
            f"Requested cutout of {nx} x {ny} = {nx * ny} pixels exceeds the maximum of {MAX_CUTOUT_PIXELS:,} pixels."
        )
    return nx, ny


def parse_sector(params: dict[str, str]) -> int | None:
    """Return the optional ``sector``."""
    raw = params.get("sector")
    if raw is None or raw.strip() == "":
        return None
    try:
        sector = int(raw)
    except ValueError:
        raise TesscutBadRequest(f"Invalid sector: {raw!r}") from None
    if sector < 1:
        raise TesscutBadRequest(f"Invalid sector: {raw!r}")
    return sector


@dataclass(frozen=True)
class SectorQuery:
    """A validated ``sector`` request: a position and a search radius, in degrees."""

    ra_deg: float
    dec_deg: float
    radius_deg: float


async def sector_query(request: Request) -> SectorQuery:
    """Return the ``sector`` request a query string or form asks for; 400 (413) as TESScut would refuse it."""
    params = await request_params(request)
    ra, dec = parse_position(params)
    return SectorQuery(ra, dec, parse_radius_px(params.get("radius")) * PIXEL_SCALE_DEG)


async def astrocut_query(request: Request) -> MirrorCutout:
    """Return the ``astrocut`` request a query string or form asks for; 400 (413) as TESScut would refuse it."""
    params = await request_params(request)
    ra, dec = parse_position(params)
    nx, ny = parse_cutout_size(params)
    return MirrorCutout(ra, dec, nx, ny, parse_sector(params))


SectorQueryDep = Annotated[SectorQuery, Depends(sector_query)]
AstrocutQueryDep = Annotated[MirrorCutout, Depends(astrocut_query)]
