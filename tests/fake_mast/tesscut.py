"""TESScut API v0.1 routes (``/tesscut/api/v0.1/``), speaking the wire format of upstream-apis.md sections 3 and 5.

- ``sector`` and ``astrocut`` answer GET with a query string and POST with a form body alike (astroquery >= 0.4.1
  POSTs ``get_sectors``/``get_cutouts`` with ``Accept: application/json`` and GETs ``download_cutouts``); the
  ``Accept`` header is never looked at and unknown parameters (``product=SPOC``) are ignored.
- ``astrocut`` answers a zip with one target pixel file per sector/camera/CCD (``tpf.py``), generated once per
  normalised request (RA/Dec to 1e-7 degree, size, CCD list) into an on-disk LRU cache and streamed from there.
  The real 2018 zip in tests/data is served byte for byte for its own request (107.27, -70.0, 5 x 5 px, sector 1 or
  all sectors).
- A position on no detector is a 200 with a JSON ``{"msg": ...}`` body, which astroquery turns into a warning;
  bad parameters and cutouts over 10,000 pixels are 400 with ``{"msg": ...}`` (the real wording is not recorded).
- Moving targets are not emulated (501).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import parse_qs

from .footprints import PIXEL_SCALE_DEG, Observation, observations
from .routing import Request, Response, Route, json_response, route
from .targets import DATA_DIR

TESSCUT_PREFIX = "/tesscut/api/v0.1/"
_TESSCUT = r"/tesscut/api/v0\.1"
REAL_ZIP_PATH = DATA_DIR / "astrocut_107.27_-70.0_5x5.zip"
REAL_ZIP_REQUEST = (107.27, -70.0, 5, 5)
REAL_ZIP_TOLERANCE_DEG = 1e-6
MAX_CUTOUT_PIXELS = 10_000
DEFAULT_CUTOUT_SIZE = 5
ZIP_CONTENT_TYPE = "application/zip"
NO_DATA_MESSAGE = "Cutout Error: No FFIs found for input target. Cutout not performed."
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_ANGLE = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*", re.IGNORECASE)
_ANGLE_UNITS_DEG = {"": 1.0, "d": 1.0, "deg": 1.0, "m": 1.0 / 60.0, "s": 1.0 / 3600.0}


class TesscutError(Exception):
    """A request TESScut rejects: answered as ``{"msg": ...}`` with the status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def msg_response(message: str, status: int = 200) -> Response:
    """TESScut's JSON message body."""
    return json_response({"msg": message}, status)


# ---------------------------------------------------------------------------------------------------------------
# Parameters


def request_params(request: Request) -> dict[str, str]:
    """Query-string and form-body parameters (the body wins); the first value of each."""
    merged = {name: values[0] for name, values in request.query.items() if values}
    content_type = request.headers.get("Content-Type", "")
    if request.body and ("form-urlencoded" in content_type or not content_type):
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        merged.update({name: values[0] for name, values in form.items() if values})
    return merged


def parse_number(params: dict[str, str], name: str, *, default: float | None = None) -> float:
    """A finite float parameter; 400 when missing (without default) or malformed."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        if default is None:
            raise TesscutError(400, f"Missing required parameter: {name}")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TesscutError(400, f"Invalid {name}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise TesscutError(400, f"Invalid {name}: {raw!r}")
    return value


def parse_position(params: dict[str, str]) -> tuple[float, float]:
    """(RA in [0, 360), Dec) in degrees."""
    ra = parse_number(params, "ra")
    dec = parse_number(params, "dec")
    if not -90.0 <= dec <= 90.0:
        raise TesscutError(400, f"Invalid dec: {dec} is outside [-90, 90]")
    return ra % 360.0, dec


def parse_radius_px(raw: str | None) -> float:
    """The ``sector`` radius in pixels: bare degrees or a number with unit d, m, s or px."""
    if raw is None or raw.strip() == "":
        return 0.0
    found = _ANGLE.fullmatch(raw)
    if found is None:
        raise TesscutError(400, f"Invalid radius: {raw!r}")
    value, unit = float(found.group(1)), found.group(2).lower()
    if value < 0:
        raise TesscutError(400, f"Invalid radius: {raw!r} is negative")
    if unit == "px":
        return value
    if unit not in _ANGLE_UNITS_DEG:
        raise TesscutError(400, f"Invalid radius unit {unit!r}: use d, m, s or px")
    return value * _ANGLE_UNITS_DEG[unit] / PIXEL_SCALE_DEG


def parse_cutout_size(params: dict[str, str]) -> tuple[int, int]:
    """(nx, ny) in pixels from ``x`` (columns), ``y`` (rows) and ``units`` (px, or an angle unit)."""
    units = (params.get("units") or "px").strip().lower()
    x = parse_number(params, "x", default=DEFAULT_CUTOUT_SIZE)
    y = parse_number(params, "y", default=DEFAULT_CUTOUT_SIZE)
    if x <= 0 or y <= 0:
        raise TesscutError(400, "Invalid cutout size: x and y must be positive")
    if units in ("px", "pixel", "pixels"):
        sizes = (round(x), round(y))
    elif units in _ANGLE_UNITS_DEG and units:
        # An angular size covers at least that much sky: round up to whole pixels.
        scale = _ANGLE_UNITS_DEG[units] / PIXEL_SCALE_DEG
        sizes = (math.ceil(x * scale - 1e-9), math.ceil(y * scale - 1e-9))
    else:
        raise TesscutError(400, f"Invalid units {units!r}: use px or d")
    nx, ny = max(1, sizes[0]), max(1, sizes[1])
    if nx * ny > MAX_CUTOUT_PIXELS:
        raise TesscutError(
            400,
            f"Requested cutout of {nx} x {ny} = {nx * ny} pixels exceeds the maximum of {MAX_CUTOUT_PIXELS:,} pixels.",
        )
    return nx, ny


def parse_sector(params: dict[str, str]) -> int | None:
    """The optional ``sector`` parameter."""
    raw = params.get("sector")
    if raw is None or raw.strip() == "":
        return None
    try:
        sector = int(raw)
    except ValueError:
        raise TesscutError(400, f"Invalid sector: {raw!r}") from None
    if sector < 1:
        raise TesscutError(400, f"Invalid sector: {raw!r}")
    return sector


# ---------------------------------------------------------------------------------------------------------------
# The on-disk cache of generated zips


class CutoutCache:
    """Generated zips in a private temporary directory, least recently used evicted first.

    One build per key at a time: concurrent requests for the same cutout wait for the first one's file. Handles
    returned by :meth:`open` stay readable after eviction (the file is only unlinked).
    """

    def __init__(self, *, max_entries: int = 64, max_bytes: int = 2 << 30) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[str, int]] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self.builds = 0
        self.hits = 0

    def open(self, key: Hashable, build: Callable[[str], None]) -> BinaryIO:
        """An open handle on the zip for ``key``, calling ``build(path)`` to write it on a miss."""
        with self._lock:
            handle = self._open_cached(key)
            if handle is not None:
                return handle
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                handle = self._open_cached(key)
                if handle is not None:
                    return handle
                directory = self._ensure_directory()
            fd, partial = tempfile.mkstemp(dir=directory, suffix=".zip.part")
            os.close(fd)
            try:
                build(partial)
                final = partial.removesuffix(".part")
                os.replace(partial, final)
            except BaseException:
                if os.path.exists(partial):
                    os.unlink(partial)
                with self._lock:
                    self._building.pop(key, None)
                raise
            with self._lock:
                self._entries[key] = (final, os.path.getsize(final))
                self.builds += 1
                handle = open(final, "rb")  # the server closes it once the body is sent
                self._evict(keep=key)
                self._building.pop(key, None)
            return handle

    def _open_cached(self, key: Hashable) -> BinaryIO | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return open(entry[0], "rb")  # the server closes it once the body is sent

    def _ensure_directory(self) -> str:
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="fake-mast-tesscut-")
        return self._directory.name

    def _evict(self, keep: Hashable) -> None:
        total = sum(size for _, size in self._entries.values())
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or total > self.max_bytes):
            oldest = next(iter(self._entries))
            if oldest == keep:
                break
            path, size = self._entries.pop(oldest)
            total -= size
            os.unlink(path)

    @property
    def directory(self) -> str | None:
        """The directory holding the zips, or None before the first build and after :meth:`clear`."""
        with self._lock:
            return self._directory.name if self._directory is not None else None

    def stats(self) -> dict[str, int]:
        """Entries, bytes on disk, builds and hits so far."""
        with self._lock:
            total = sum(size for _, size in self._entries.values())
            return {"entries": len(self._entries), "bytes": total, "builds": self.builds, "hits": self.hits}

    def clear(self) -> None:
        """Delete every cached zip and the directory (a later request recreates it)."""
        with self._lock:
            self._entries.clear()
            if self._directory is not None:
                self._directory.cleanup()
                self._directory = None


# ---------------------------------------------------------------------------------------------------------------
# Handlers


@dataclass(frozen=True)
class CutoutRequest:
    """A validated ``astrocut`` request."""

    ra_deg: float
    dec_deg: float
    nx: int
    ny: int
    sector: int | None

    def is_real_sample(self) -> bool:
        """Whether this is the request the real 2018 zip answered."""
        ra, dec, nx, ny = REAL_ZIP_REQUEST
        return (
            abs(self.ra_deg - ra) <= REAL_ZIP_TOLERANCE_DEG
            and abs(self.dec_deg - dec) <= REAL_ZIP_TOLERANCE_DEG
            and (self.nx, self.ny) == (nx, ny)
            and self.sector in (None, 1)
        )


class TesscutApi:
    """The TESScut handlers over a :class:`CutoutCache`."""

    def __init__(self, cache: CutoutCache | None = None) -> None:
        self.cache = cache if cache is not None else CutoutCache()
        self._real_zip: bytes | None = None

    def routes(self) -> list[Route]:
        """Routing-table entries (GET and POST for every path); endpoint names ``tesscut.*``."""
        table: list[Route] = []
        for method in ("GET", "POST"):
            table += [
                route(method, rf"{_TESSCUT}/sector/?", "tesscut.sector", self._guard(self.sector)),
                route(method, rf"{_TESSCUT}/astrocut/?", "tesscut.astrocut", self._guard(self.astrocut)),
                route(method, rf"{_TESSCUT}/moving_target/(?:sector|astrocut)/?", "tesscut.other", self.moving_target),
                route(method, rf"{_TESSCUT}(?:/.*)?", "tesscut.other", self.not_found),
            ]
        return table

    @staticmethod
    def _guard(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            try:
                return handler(request)
            except TesscutError as error:
                return msg_response(error.message, error.status)

        guarded.__name__ = handler.__name__
        return guarded

    def sector(self, request: Request) -> Response:
        """``sector``: every sector/camera/CCD within ``radius`` of the position."""
        params = request_params(request)
        ra, dec = parse_position(params)
        radius_px = parse_radius_px(params.get("radius"))
        results = [
            {"sectorName": o.sector_name, "sector": f"{o.sector:04d}", "camera": str(o.camera), "ccd": str(o.ccd)}
            for o in observations(ra, dec, radius_px=radius_px)
        ]
        return json_response({"results": results})

    def astrocut(self, request: Request) -> Response:
        """``astrocut``: a zip of target pixel files, or ``{"msg"}`` when no FFI holds the position."""
        params = request_params(request)
        ra, dec = parse_position(params)
        nx, ny = parse_cutout_size(params)
        cutout = CutoutRequest(ra, dec, nx, ny, parse_sector(params))
        if cutout.is_real_sample():
            return Response(200, self._real_sample(), ZIP_CONTENT_TYPE)
        sectors = [cutout.sector] if cutout.sector is not None else None
        found = observations(ra, dec, cutout_size_px=(nx, ny), sectors=sectors)
        if not found:
            return msg_response(NO_DATA_MESSAGE)
        handle = self.cache.open(self._cache_key(cutout, found), lambda path: self._build(path, cutout, found))
        return Response(200, content_type=ZIP_CONTENT_TYPE, body_file=handle)

    def moving_target(self, request: Request) -> Response:
        """``moving_target/*``: not emulated."""
        return msg_response("moving targets are not emulated", 501)

    def not_found(self, request: Request) -> Response:
        """Any other path under the TESScut prefix."""
        return msg_response(f"Unknown TESScut endpoint: {request.path}", 404)

    def _real_sample(self) -> bytes:
        if self._real_zip is None:
            self._real_zip = REAL_ZIP_PATH.read_bytes()
        return self._real_zip

    @staticmethod
    def _cache_key(cutout: CutoutRequest, found: list[Observation]) -> Hashable:
        ccds = tuple((o.sector, o.camera, o.ccd) for o in found)
        return (round(cutout.ra_deg, 7), round(cutout.dec_deg, 7), cutout.nx, cutout.ny, ccds)

    @staticmethod
    def _build(path: str, cutout: CutoutRequest, found: list[Observation]) -> None:
        # Imported here so that starting the emulator does not pay for astropy until a cutout is needed.
        from .tpf import write_cutout_zip

        write_cutout_zip(path, found, cutout.ra_deg, cutout.dec_deg, cutout.nx, cutout.ny)
