"""Aperture photometry of a cached FFI cutout, read a few frames at a time (the method: `science.photometry`).

The FLUX and FLUX_ERR images are never read whole: a sample of frames spread over the sector makes the reference
image, then every frame is measured in chunks (`FRAMES_PER_CHUNK`, `CHUNK_BYTES`), so memory stays that of a
chunk (a few MB) whatever the sector's length or the cutout's size. Blocking (file I/O): call in a worker thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from astropy.io import fits

from service.errors import InvalidRequest
from service.science import photometry
from service.science.photometry import Aperture, Photometry
from service.tpf import PixelTable, scalar_column, target_pixel

# Frames are measured up to 128 at a time, and at most 2 MB of each image column (a 100×100 cutout: 52 frames).
FRAMES_PER_CHUNK = 128
CHUNK_BYTES = 2 << 20
# The reference image is the median of up to 200 frames spread evenly over the sector's good ones, up to 4 MB.
REFERENCE_FRAMES = 200
REFERENCE_BYTES = 4 << 20
# A cutout this small leaves no pixels around the star for the background.
MIN_SIZE_PX = 5
# The cutout's WCS, copied onto the light curve's APERTURE image so its pixels can be placed on the sky.
WCS_KEYWORDS = (
    "WCSAXES", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2",
    "CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "RADESYS", "EQUINOX", "LONPOLE", "LATPOLE",
)  # fmt: skip


@dataclass(frozen=True)
class FfiPhotometry:
    """A cutout's light curve: per FFI its time, quality and photometry; the aperture and background pixels."""

    time_btjd: npt.NDArray[np.float64]
    quality: npt.NDArray[np.int64]
    photometry: Photometry
    aperture: Aperture
    background: npt.NDArray[np.bool_]
    on_ccd: npt.NDArray[np.bool_]  # pixels with data in the reference image
    target_xy: tuple[float, float]  # where the star is taken to be (x = column, 0-based)
    camera: int | None
    ccd: int | None
    wcs: dict[str, Any]

    @property
    def usable(self) -> npt.NDArray[np.bool_]:
        """Return which cadences detrending and event searches use: finite, and no severe QUALITY flag."""
        severe = (self.quality & photometry.SEVERE_QUALITY) != 0
        return np.asarray(np.isfinite(self.time_btjd) & np.isfinite(self.photometry.flux) & ~severe, dtype=bool)

    def relative_flux(self) -> npt.NDArray[np.float64]:
        """Return the detrended relative flux (`photometry.detrend`), NaN on the cadences not usable."""
        usable = self.usable
        relative = photometry.detrend(self.time_btjd, self.photometry.flux, usable)
        relative[~usable] = np.nan
        return relative


def _header_int(header: fits.Header, keyword: str) -> int | None:
    value = header.get(keyword)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def star_position(target_xy: tuple[float, float] | None, shape: tuple[int, ...]) -> tuple[float, float]:
    """Return the star's pixel by the cutout's WCS, or the cutout's centre (where TESScut puts the star).

    The centre stands in when the WCS is missing or places the star off the cutout.
    """
    ny, nx = shape
    if target_xy is not None and -0.5 <= target_xy[0] <= nx - 0.5 and -0.5 <= target_xy[1] <= ny - 0.5:
        return target_xy
    return (nx - 1) / 2, (ny - 1) / 2


def _reference_rows(time: np.ndarray, quality: np.ndarray, most: int) -> np.ndarray:
    """Return up to ``most`` rows spread over the sector: unflagged ones, else any with a time, else any."""
    for candidates in ((quality == 0) & np.isfinite(time), np.isfinite(time), np.ones(time.size, dtype=bool)):
        rows = np.flatnonzero(candidates)
        if rows.size:
            picks = np.linspace(0, rows.size - 1, min(most, rows.size)).round().astype(np.int64)
            return np.asarray(np.unique(rows[picks]), dtype=np.int64)
    return np.empty(0, dtype=np.int64)


def measure_cutout(source: Path | BinaryIO, ra_deg: float, dec_deg: float) -> FfiPhotometry:
    """Return the aperture photometry of every frame of a cutout, read in chunks; 422 for a cutout without data."""
    # Everything is read inside the block: closing the HDU list closes a file handle it was given.
    with fits.open(source, memmap=not isinstance(source, io.BytesIO), lazy_load_hdus=True) as hdus:
        table = PixelTable.of(hdus)
        time = scalar_column(source, hdus, "PIXELS", "TIME").astype(np.float64)
        quality = scalar_column(source, hdus, "PIXELS", "QUALITY").astype(np.int64)
        target_xy = target_pixel(hdus, ra_deg, dec_deg)
        primary, aperture_header = hdus[0].header, hdus["APERTURE"].header
        frame_bytes = table.fields["FLUX"][0].itemsize
        rows = _reference_rows(time, quality, max(1, min(REFERENCE_FRAMES, REFERENCE_BYTES // frame_bytes)))
        if rows.size == 0:
            raise InvalidRequest("This cutout has no frames, so it has no light curve.")
        reference = photometry.reference_image(table.read_rows(source, ["FLUX"], rows.tolist())["FLUX"])
        centre = star_position(target_xy, reference.shape)
        try:
            aperture = photometry.threshold_aperture(reference, centre)
        except ValueError as exc:
            raise InvalidRequest(f"No light curve can be measured here: {exc} (its pixels are off the CCD).") from exc
        background = photometry.background_pixels(reference, aperture.mask, centre)
        parts = [
            photometry.measure_frames(chunk["FLUX"], chunk["FLUX_ERR"], aperture.mask, background)
            for chunk in table.chunks(
                source, ["FLUX", "FLUX_ERR"], max(1, min(FRAMES_PER_CHUNK, CHUNK_BYTES // frame_bytes))
            )
        ]
    return FfiPhotometry(
        time_btjd=time,
        quality=quality,
        photometry=Photometry.joined(parts),
        aperture=aperture,
        background=background,
        on_ccd=np.isfinite(reference),
        target_xy=centre,
        camera=_header_int(primary, "CAMERA"),
        ccd=_header_int(primary, "CCD"),
        wcs={key: aperture_header[key] for key in WCS_KEYWORDS if key in aperture_header},
    )
