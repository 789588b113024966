"""Target pixel files from TESScut: what is in one, which one holds the target, and stamping the TIC into it.

Blocking (FITS I/O); call from worker threads. Handles both the current astrocut layout and the 2018 one
(``SECTOR=''``, a float APERTURE).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

# warnings.catch_warnings swaps the process-wide filter list: two threads inside it at once can restore each
# other's filters (one thread's WCS then warns, or errors where warnings are errors). One at a time, then.
_QUIET_WCS = threading.Lock()


def aperture_wcs(header: fits.Header) -> WCS:
    """Return the celestial WCS of a cutout's APERTURE header, quietly (TESScut's headers make astropy warn)."""
    with _QUIET_WCS, warnings.catch_warnings():
        # TESScut's APERTURE headers carry non-standard keywords that astropy fixes and warns about.
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", AstropyWarning)
        return WCS(header)


def scalar_column(source: Path | BinaryIO, hdus: fits.HDUList, extension: str, name: str) -> np.ndarray:
    """Return one scalar column of a binary table, reading only its bytes.

    Through astropy's memmap, converting a column of a big table pages in (and counts in RSS) nearly the whole
    file, because each row's value sits on its own page and the kernel maps its neighbours too; a 700 MB
    cutout would cost 700 MB of RSS. One ``pread`` of each value costs a few milliseconds instead.
    """
    hdu = hdus[extension]
    if isinstance(source, io.BytesIO):
        return np.asarray(hdu.data[name])  # small in-memory files: the simple way
    field_dtype, field_offset = hdu.columns.dtype.fields[name][:2]
    value = np.dtype(field_dtype).newbyteorder(">")  # FITS tables are big-endian
    start, row_bytes, rows = hdu.fileinfo()["datLoc"], hdu.header["NAXIS1"], hdu.header["NAXIS2"]
    buffer = bytearray(rows * value.itemsize)
    opened = open(source, "rb") if isinstance(source, Path) else None  # noqa: SIM115 - closed below
    try:
        descriptor = opened.fileno() if opened is not None else source.fileno()  # type: ignore[union-attr]
        for row in range(rows):
            chunk = os.pread(descriptor, value.itemsize, start + row * row_bytes + field_offset)
            if len(chunk) != value.itemsize:
                raise ValueError(f"the {extension} table ends early (row {row} of {rows}): a truncated file")
            buffer[row * value.itemsize : (row + 1) * value.itemsize] = chunk
    finally:
        if opened is not None:
            opened.close()
    return np.frombuffer(bytes(buffer), dtype=value).astype(value.newbyteorder("="))


@dataclass(frozen=True)
class PixelTable:
    """Where a cutout's PIXELS rows lie in its file: enough to read image columns a few frames at a time.

    Reading image columns through astropy's memmap pages the whole table into RSS (see `scalar_column`); reading
    the bytes of a few rows at a time with ``pread`` keeps memory to those rows, whatever the cutout's size.
    """

    start: int  # byte offset of row 0
    row_bytes: int
    n_rows: int
    fields: dict[str, tuple[np.dtype[Any], int]]  # column -> (big-endian dtype, image shape included; offset)

    @classmethod
    def of(cls, hdus: fits.HDUList) -> PixelTable:
        """Return the layout of ``hdus``'s PIXELS table (headers only: no data is read)."""
        hdu = hdus["PIXELS"]
        fields = {}
        for name, (field_dtype, offset, *_) in hdu.columns.dtype.fields.items():
            base, shape = field_dtype.base, field_dtype.shape
            fields[name] = (np.dtype((base.newbyteorder(">"), shape)) if shape else base.newbyteorder(">"), offset)
        return cls(hdu.fileinfo()["datLoc"], hdu.header["NAXIS1"], hdu.header["NAXIS2"], fields)

    def read_rows(self, source: Path | BinaryIO, names: Sequence[str], rows: Sequence[int]) -> dict[str, np.ndarray]:
        """Return the columns ``names`` of ``rows`` (native byte order, images as (n, ny, nx)), reading their bytes.

        Only the span of each row from the first named column to the end of the last is read.
        """
        layout = [(name, *self.fields[name]) for name in names]
        first = min(offset for _, _, offset in layout)
        span = max(offset + dtype.itemsize for _, dtype, offset in layout) - first
        record = np.dtype(
            {
                "names": list(names),
                "formats": [dtype for _, dtype, _ in layout],
                "offsets": [offset - first for _, _, offset in layout],
                "itemsize": span,
            }
        )
        buffer = bytearray(len(rows) * span)
        view = memoryview(buffer)
        with _positional_reader(source) as read_at:
            for index, row in enumerate(rows):
                if not 0 <= row < self.n_rows:
                    raise ValueError(f"row {row} is not in the PIXELS table ({self.n_rows} rows)")
                read_at(self.start + row * self.row_bytes + first, view[index * span : (index + 1) * span])
        records = np.frombuffer(buffer, dtype=record, count=len(rows))
        return {name: records[name].astype(dtype.base.newbyteorder("=")) for name, dtype, _ in layout}

    def chunks(
        self, source: Path | BinaryIO, names: Sequence[str], frames_per_chunk: int
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield the columns ``names`` of every row, ``frames_per_chunk`` rows at a time, in order."""
        for first in range(0, self.n_rows, frames_per_chunk):
            yield self.read_rows(source, names, range(first, min(first + frames_per_chunk, self.n_rows)))


ReadAt = Callable[[int, memoryview], None]


@contextlib.contextmanager
def _positional_reader(source: Path | BinaryIO) -> Iterator[ReadAt]:
    """Yield ``read_at(offset, into)``, which fills ``into`` from ``offset`` of a path, an open file or a BytesIO.

    Files are read with ``pread``: no shared file position, so render threads may read the same handle's file.
    """
    if isinstance(source, io.BytesIO):
        whole = source.getbuffer()

        def copy(offset: int, into: memoryview) -> None:
            part = whole[offset : offset + len(into)]
            _check_read(len(part), into)
            into[:] = part

        try:
            yield copy
        finally:
            whole.release()  # a BytesIO cannot grow or close while its buffer is exported
        return
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(open(source, "rb")) if isinstance(source, Path) else source
        descriptor = handle.fileno()

        def pread(offset: int, into: memoryview) -> None:
            _check_read(os.preadv(descriptor, [into], offset), into)

        yield pread


def _check_read(count: int, into: memoryview) -> None:
    if count != len(into):
        raise ValueError("the PIXELS table ends early: a truncated file")


def target_pixel(hdus: fits.HDUList, ra_deg: float, dec_deg: float) -> tuple[float, float] | None:
    """Return the target's (x, y) pixel position (0-based, x = column) in the cutout, or None without a WCS."""
    try:
        x, y = aperture_wcs(hdus["APERTURE"].header).world_to_pixel_values(ra_deg, dec_deg)
    except (KeyError, ValueError, MemoryError):
        return None
    if not (math.isfinite(float(x)) and math.isfinite(float(y))):
        return None
    return float(x), float(y)


def contains_target(path: Path, ra_deg: float, dec_deg: float) -> bool:
    """Return whether the target falls on a pixel of this cutout that has data."""
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdus:
        pixel = target_pixel(hdus, ra_deg, dec_deg)
        if pixel is None:
            return False
        aperture = hdus["APERTURE"].data
        column, row = round(pixel[0]), round(pixel[1])
        ny, nx = aperture.shape
        return 0 <= row < ny and 0 <= column < nx and bool(aperture[row, column] > 0)


def stamp_tic(path: Path, tic_id: int, tessmag: float | None) -> None:
    """Write the TIC id (and TESS magnitude, when known) into the primary header, where TESScut leaves blanks."""
    with fits.open(path, mode="update", memmap=True) as hdus:
        header = hdus[0].header
        header["TICID"] = (tic_id, "unique TESS target identifier")
        header["OBJECT"] = (f"TIC {tic_id}", "string version of target id")
        if tessmag is not None:
            header["TESSMAG"] = (tessmag, "[mag] TESS magnitude")
        if "CHECKSUM" in header:
            hdus[0].add_checksum()


def describe_tpf(source: Path | BinaryIO, ra_deg: float, dec_deg: float) -> dict[str, Any]:
    """Summarise a cutout: shape, frames, time range and cadence, the target's pixel and the WCS centre."""
    with fits.open(source, memmap=not isinstance(source, io.BytesIO), lazy_load_hdus=True) as hdus:
        primary = hdus[0].header
        time = scalar_column(source, hdus, "PIXELS", "TIME").astype(float)
        finite = time[np.isfinite(time)]
        ny, nx = hdus["APERTURE"].data.shape
        pixel = target_pixel(hdus, ra_deg, dec_deg)
        aperture_header = hdus["APERTURE"].header
        cadence_min = float(np.median(np.diff(finite)) * 24 * 60) if finite.size > 1 else None
        sector = primary.get("SECTOR")
        return {
            "sector": sector if isinstance(sector, int) else None,
            "camera": primary.get("CAMERA") if isinstance(primary.get("CAMERA"), int) else None,
            "ccd": primary.get("CCD") if isinstance(primary.get("CCD"), int) else None,
            "shape": [int(ny), int(nx)],
            "n_frames": int(len(time)),
            "time_start_btjd": float(finite.min()) if finite.size else None,
            "time_end_btjd": float(finite.max()) if finite.size else None,
            "cadence_minutes": round(cadence_min, 3) if cadence_min is not None else None,
            "target_pixel": {"x": round(pixel[0], 3), "y": round(pixel[1], 3)} if pixel else None,
            "wcs_center_deg": {
                "ra": float(aperture_header.get("CRVAL1", math.nan)),
                "dec": float(aperture_header.get("CRVAL2", math.nan)),
            },
            "ticid": primary.get("TICID") if isinstance(primary.get("TICID"), int) else None,
            "tessmag": primary.get("TESSMAG") or None,
        }


class WindowOutsideSector(ValueError):
    """The requested window holds no frame of the cutout: it ends before the first frame or starts after the last."""

    def __init__(self, start_btjd: float, end_btjd: float, first_btjd: float, last_btjd: float) -> None:
        self.start_btjd, self.end_btjd, self.first_btjd, self.last_btjd = start_btjd, end_btjd, first_btjd, last_btjd
        super().__init__(
            f"BTJD {start_btjd}–{end_btjd} holds no frame of this sector, whose frames span "
            f"BTJD {first_btjd:.4f}–{last_btjd:.4f}."
        )


Clamped = Literal["start", "end", "both"]


@dataclass(frozen=True)
class ClampedWindow:
    """A requested window, and the part of it inside the sector's frames (what is shown and diagnosed)."""

    requested_start_btjd: float
    requested_end_btjd: float
    start_btjd: float
    end_btjd: float
    sector_range_btjd: tuple[float, float]  # the first and last frame times

    @property
    def clamped(self) -> Clamped | None:
        """Return which ends of the window were moved onto the sector's frames, or None."""
        start = self.start_btjd != self.requested_start_btjd
        end = self.end_btjd != self.requested_end_btjd
        return "both" if start and end else "start" if start else "end" if end else None


def clamp_window(
    start_btjd: float, end_btjd: float, first_btjd: float, last_btjd: float, slack_days: float = 0.0
) -> ClampedWindow:
    """Return the window cut to the sector's frames, ``first``…``last``; `WindowOutsideSector` if none is in it.

    A window reaching past the first or last frame (a box drawn wider than the sector) is cut there. One wholly
    outside is refused, unless it is within ``slack_days`` of an edge: then it is that edge's instant (the nearest
    frame rule of movies and frames allows one cadence of slack).
    """
    if end_btjd < first_btjd - slack_days or start_btjd > last_btjd + slack_days:
        raise WindowOutsideSector(start_btjd, end_btjd, first_btjd, last_btjd)
    start = min(max(start_btjd, first_btjd), last_btjd)
    end = max(min(end_btjd, last_btjd), first_btjd)
    return ClampedWindow(start_btjd, end_btjd, start, end, (first_btjd, last_btjd))


@dataclass(frozen=True)
class FrameWindow:
    """The frames of a cutout between two times, with what a movie needs to annotate them."""

    flux: np.ndarray  # (n, ny, nx) e-/s; row 0 is the bottom of the image, as in FITS
    time_btjd: np.ndarray
    cadence: np.ndarray  # CADENCENO, or the frame index where TESScut writes 0
    quality: np.ndarray
    target_xy: tuple[float, float] | None
    window: ClampedWindow


def read_window(
    source: BinaryIO | Path, ra_deg: float, dec_deg: float, start_btjd: float, end_btjd: float, max_frames: int
) -> FrameWindow:
    """Return the frames from the one nearest ``start`` to the one nearest ``end``, inclusive (the tutorial's rule).

    Only those rows are read. A window reaching past the sector's first or last frame is cut there (`clamp_window`,
    with one cadence of slack); raises `WindowOutsideSector` when it holds no frame of the sector, and
    `ValueError` when it holds more than ``max_frames`` frames.
    """
    # memmap on files (a path or a real file handle): only the rows read are paged in, however big the cutout.
    with fits.open(source, memmap=not isinstance(source, io.BytesIO), lazy_load_hdus=True) as hdus:
        pixels = hdus["PIXELS"].data
        time = scalar_column(source, hdus, "PIXELS", "TIME").astype(float)
        finite = np.isfinite(time)
        if not finite.any():
            raise ValueError("this cutout has no frame with a valid TIME")
        first, last = float(time[finite].min()), float(time[finite].max())
        slack = float(np.median(np.diff(time[finite]))) if finite.sum() > 1 else 0.0
        window = clamp_window(start_btjd, end_btjd, first, last, slack)
        searchable = np.where(finite, time, np.inf)
        begin = int(np.argmin(np.abs(searchable - window.start_btjd)))
        end = int(np.argmin(np.abs(searchable - window.end_btjd)))
        count = end - begin + 1
        if count > max_frames:
            raise ValueError(
                f"BTJD {window.start_btjd}–{window.end_btjd} holds {count} frames, more than the {max_frames} allowed."
            )
        rows = slice(begin, end + 1)
        cadence = np.asarray(pixels["CADENCENO"][rows], dtype=np.int64)
        if not cadence.any():
            cadence = np.arange(begin, end + 1, dtype=np.int64)
        return FrameWindow(
            flux=np.array(pixels["FLUX"][rows], dtype=np.float32),
            time_btjd=time[rows].copy(),
            cadence=cadence,
            quality=np.asarray(pixels["QUALITY"][rows], dtype=np.int64),
            target_xy=target_pixel(hdus, ra_deg, dec_deg),
            window=window,
        )
