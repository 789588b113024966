"""The pixels a diagnosis looks at, read from a cached cutout: the window's frames and its reference, nothing more.

Only the rows of the span (`pixels.frames_span`: the window and the reference stretches before and after it) are
read, with ``pread`` (`tpf.PixelTable`), so memory is that span's pixels whatever the sector's length. The aperture
is the FFI light curve's (`photometry.threshold_aperture` on the span's median image), so a diagnosis measures the
star the way its light curve does. Blocking (file I/O): call in a worker thread.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from service import tpf
from service.errors import InvalidRequest
from service.science import photometry
from service.science.pixels import FLAGGED_QUALITY, PixelSeries, frames_span
from service.services.ffi_photometry import star_position


@dataclass(frozen=True)
class SkyFrame:
    """The cutout's WCS: cutout pixels (0-based column x, row y) to the sky and back; None without a WCS."""

    wcs: WCS | None

    def sky(self, x: float, y: float) -> tuple[float, float] | None:
        """Return (RA, Dec) in degrees of a cutout pixel position."""
        if self.wcs is None:
            return None
        ra, dec = self.wcs.all_pix2world([[x, y]], 0)[0]
        return (float(ra) % 360.0, float(dec)) if math.isfinite(ra) and math.isfinite(dec) else None

    def pixel(self, ra_deg: float, dec_deg: float) -> tuple[float, float] | None:
        """Return the cutout pixel position (x, y) of a sky position."""
        if self.wcs is None:
            return None
        x, y = self.wcs.all_world2pix([[ra_deg, dec_deg]], 0)[0]
        return (float(x), float(y)) if math.isfinite(x) and math.isfinite(y) else None

    def north_pa_deg(self, x: float, y: float) -> float:
        """Return the position angle (degrees east of north) of the +row direction at (x, y); 0 without a WCS."""
        here, above = self.sky(x, y), self.sky(x, y + 1.0)
        if here is None or above is None:
            return 0.0
        return position_angle_deg(*here, *above)


def position_angle_deg(ra1_deg: float, dec1_deg: float, ra2_deg: float, dec2_deg: float) -> float:
    """Return the position angle (east of north, 0-360) of the second position seen from the first."""
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1_deg, dec1_deg, ra2_deg, dec2_deg))
    east = math.sin(ra2 - ra1) * math.cos(dec2)
    north = math.cos(dec1) * math.sin(dec2) - math.sin(dec1) * math.cos(dec2) * math.cos(ra2 - ra1)
    return math.degrees(math.atan2(east, north)) % 360.0


def separation_arcsec(ra1_deg: float, dec1_deg: float, ra2_deg: float, dec2_deg: float) -> float:
    """Return the angle between two sky positions, arcseconds (haversine: exact at small separations)."""
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1_deg, dec1_deg, ra2_deg, dec2_deg))
    a = math.sin((dec2 - dec1) / 2) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(a)))) * 3600.0


@dataclass(frozen=True)
class WindowPixels:
    """The frames of a diagnosis span, the target's aperture and the cutout's sky frame."""

    series: PixelSeries
    sky: SkyFrame
    window: tpf.ClampedWindow  # the window asked for, cut to the sector's frames: what is diagnosed
    reference_image: np.ndarray  # (ny, nx) median of the span's good frames, e-/s


def read_window_pixels(
    source: Path | BinaryIO, ra_deg: float, dec_deg: float, start_btjd: float, end_btjd: float, max_frames: int
) -> WindowPixels:
    """Return the pixels the diagnosis of [start, end] needs; 422 when the sector cannot give them.

    A window reaching past the sector's first or last frame is cut there (`tpf.clamp_window`); one that holds no
    frame raises `tpf.WindowOutsideSector` (past the sector's ends) or `InvalidRequest` (in a gap between frames).
    """
    with fits.open(source, memmap=not isinstance(source, io.BytesIO), lazy_load_hdus=True) as hdus:
        time = tpf.scalar_column(source, hdus, "PIXELS", "TIME").astype(np.float64)
        quality = tpf.scalar_column(source, hdus, "PIXELS", "QUALITY").astype(np.int64)
        finite = np.isfinite(time)
        if not finite.any():
            raise InvalidRequest("This cutout has no frame with a valid TIME, so no window can be diagnosed.")
        first, last = float(time[finite].min()), float(time[finite].max())
        window = tpf.clamp_window(start_btjd, end_btjd, first, last)
        in_window = finite & (time >= window.start_btjd) & (time <= window.end_btjd)
        if not in_window.any():
            raise InvalidRequest(
                f"BTJD {start_btjd}–{end_btjd} holds no frame of this sector: it falls in a gap between its frames "
                f"(BTJD {first:.4f}–{last:.4f}, with a gap for each data downlink); pass a window that holds frames."
            )
        low, high = frames_span(window.start_btjd, window.end_btjd)
        rows = np.flatnonzero(finite & (time >= low) & (time <= high))
        if rows.size > max_frames:
            raise InvalidRequest(
                f"The window and its reference (BTJD {low:.3f}–{high:.3f}) hold {rows.size} frames, more than the "
                f"{max_frames} allowed; shorten the window."
            )
        table = tpf.PixelTable.of(hdus)
        flux = table.read_rows(source, ["FLUX"], rows.tolist())["FLUX"].astype(np.float64)
        target_xy = tpf.target_pixel(hdus, ra_deg, dec_deg)
        wcs = tpf.aperture_wcs(hdus["APERTURE"].header) if "APERTURE" in hdus else None
    good = (quality[rows] & FLAGGED_QUALITY) == 0
    reference = photometry.reference_image(flux[good] if good.any() else flux)
    centre = star_position(target_xy, reference.shape)
    try:
        aperture = photometry.threshold_aperture(reference, centre)
    except ValueError as exc:
        raise InvalidRequest(f"This window cannot be diagnosed: {exc} (its pixels are off the CCD).") from exc
    series = PixelSeries(flux, time[rows], quality[rows], centre, aperture.mask)
    return WindowPixels(series, SkyFrame(wcs if wcs is not None and wcs.has_celestial else None), window, reference)
