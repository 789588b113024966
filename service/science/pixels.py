"""The pixels of a window: frames chosen around it, faint background pixels, and centroids. Pure functions.

Shared by the diagnosis (`diagnosis`) and the moving-source search (`tracks`); the methods are described there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

ARCSEC_PER_PX = 21.0
HOURS_PER_DAY = 24.0
MAD_TO_SIGMA = 1.4826
# Attitude tweak, safe mode, coarse point, earth point, Argabrightening, momentum dump, manual exclude: frames
# whose pointing or calibration is not to be trusted. Stray light (2048, 4096) is not here: it is a possible cause.
FLAGGED_QUALITY = 1 | 2 | 4 | 8 | 16 | 32 | 128
REFERENCE_NEAR_DURATIONS = 0.75
REFERENCE_FAR_DURATIONS = 1.75
MIN_REFERENCE_DAYS = 0.125  # 3 h each side: six 30-min frames even for a one-frame window
MIN_REFERENCE_FRAMES = 3
BACKGROUND_GAP_PX = 2
CENTROID_HALF_BOX_PX = 2
CENTROID_ITERATIONS = 3


@dataclass(frozen=True)
class PixelSeries:
    """The cutout's frames (n, ny, nx) in e-/s, their times (BTJD) and QUALITY, the target and its aperture."""

    flux: FloatArray
    time_btjd: FloatArray
    quality: IntArray
    target_xy: tuple[float, float]  # (column, row), 0-based
    aperture: BoolArray  # (ny, nx)


@dataclass(frozen=True)
class Frames:
    """Per-frame masks: the window, its good frames, the reference, flagged, and the span searched for a track."""

    window: BoolArray  # every frame in [start, end], flagged or not
    in_event: BoolArray
    reference: BoolArray
    flagged: BoolArray
    around: BoolArray
    start_btjd: float
    end_btjd: float

    @property
    def duration_days(self) -> float:
        """Return the window's length in days."""
        return self.end_btjd - self.start_btjd


def finite_series(series: PixelSeries) -> PixelSeries:
    """Return the series without frames that hold no finite pixel, and its non-finite pixels made harmless.

    A pixel that is not finite in some frame (a CCD edge in a TESScut cutout, a cosmic-ray mask) is set in every
    frame to that frame's sky level, so it carries no signal, and leaves the aperture.
    """
    flux = np.asarray(series.flux, dtype=np.float64)
    kept = np.isfinite(flux).any(axis=(1, 2))
    flux = flux[kept]
    if flux.shape[0] == 0:
        raise ValueError("no frame holds a finite pixel")
    good: BoolArray = np.asarray(np.isfinite(flux).all(axis=0), dtype=np.bool_)
    if good.all():
        return PixelSeries(flux, series.time_btjd[kept], series.quality[kept], series.target_xy, series.aperture)
    if not good.any():
        raise ValueError("no pixel is finite in every frame")
    sky = np.median(flux[:, good], axis=1)
    flux = np.where(good[None], flux, sky[:, None, None])
    aperture = series.aperture & good
    return PixelSeries(flux, series.time_btjd[kept], series.quality[kept], series.target_xy, aperture)


def select_frames(time_btjd: FloatArray, quality: IntArray, start_btjd: float, end_btjd: float) -> Frames:
    """Return the in-event, reference, flagged and surrounding frames of the window (see the module's notes)."""
    if not end_btjd > start_btjd:
        raise ValueError("the event window must end after it starts")
    near = REFERENCE_NEAR_DURATIONS * (end_btjd - start_btjd)
    far = start_btjd - frames_span(start_btjd, end_btjd)[0]
    flagged = (np.asarray(quality, dtype=np.int64) & FLAGGED_QUALITY) != 0
    time = np.asarray(time_btjd, dtype=np.float64)
    window = (time >= start_btjd) & (time <= end_btjd)
    before = (time >= start_btjd - far) & (time <= start_btjd - near)
    after = (time >= end_btjd + near) & (time <= end_btjd + far)
    around = (time >= start_btjd - far) & (time <= end_btjd + far)
    return Frames(
        window, window & ~flagged, (before | after) & ~flagged, flagged, around & ~flagged, start_btjd, end_btjd
    )


def frames_span(start_btjd: float, end_btjd: float) -> tuple[float, float]:
    """Return the BTJD span of every frame the diagnosis of [start, end] looks at: the window and its reference."""
    duration = end_btjd - start_btjd
    far = max(REFERENCE_FAR_DURATIONS * duration, REFERENCE_NEAR_DURATIONS * duration + MIN_REFERENCE_DAYS)
    return start_btjd - far, end_btjd + far


def background_pixels(series: PixelSeries, static: FloatArray) -> BoolArray:
    """Return the faint pixels: away from the aperture and fainter than the static image's median."""
    grown = series.aperture.copy()
    for _ in range(BACKGROUND_GAP_PX):
        padded = np.pad(grown, 1)
        grown = (padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]) | (
            padded[:-2, :-2] | padded[:-2, 2:] | padded[2:, :-2] | padded[2:, 2:]
        )
    faint = ~grown & np.isfinite(static)
    return faint & (static <= np.nanmedian(static[faint]))


def sum3(cube: FloatArray) -> FloatArray:
    """Return the 3×3 sum around each pixel of the last two axes (zero-padded)."""
    pad = [(0, 0)] * (cube.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(cube, pad)
    ny, nx = cube.shape[-2:]
    return sum((padded[..., i : i + ny, j : j + nx] for i in range(3) for j in range(3)), np.zeros_like(cube))


def box(image: FloatArray, row: int, column: int, half: int) -> FloatArray:
    """Return the pixels within ``half`` of (row, column), cut at the image's edges."""
    return image[max(row - half, 0) : row + half + 1, max(column - half, 0) : column + half + 1]


def centroid(
    image: FloatArray, variance: FloatArray, x: float, y: float
) -> tuple[tuple[float, float], tuple[float, float, float], float]:
    """Return the flux-weighted centroid in a box centred on (x, y), its covariance, and the box's SNR.

    The box is (2 `CENTROID_HALF_BOX_PX` + 1) pixels wide centred on (x, y) itself, not on a whole pixel: edge
    pixels count by the fraction of them inside it. A box snapped to whole pixels pulls the centroid towards the
    pixel it is centred on (0.1 px for a star on a pixel corner); iterating on this one converges on the source.
    """
    ny, nx = image.shape
    x, y = min(max(x, 0.0), nx - 1.0), min(max(y, 0.0), ny - 1.0)
    half = CENTROID_HALF_BOX_PX
    row, column = round(y), round(x)
    rows, columns = np.indices(image.shape)
    xs, ys = box(columns.astype(float), row, column, half + 1), box(rows.astype(float), row, column, half + 1)
    inside = _overlap(xs, x, half) * _overlap(ys, y, half)
    weights = inside * box(image, row, column, half + 1)
    var = box(variance, row, column, half + 1)
    var = inside**2 * np.where(np.isfinite(var), var, 0.0)  # masked pixels: no weight in the error
    total = float(weights.sum())
    noise = math.sqrt(float(var.sum()))
    snr = total / noise if noise > 0 else 0.0
    if total <= 0:
        return (x, y), (math.inf, math.inf, 0.0), snr
    cx, cy = float((weights * xs).sum() / total), float((weights * ys).sum() / total)
    sx2 = float((var * (xs - cx) ** 2).sum()) / total**2
    sy2 = float((var * (ys - cy) ** 2).sum()) / total**2
    sxy = float((var * (xs - cx) * (ys - cy)).sum()) / total**2
    return (cx, cy), (sx2, sy2, sxy), snr


def _overlap(centres: FloatArray, centre: float, half: int) -> FloatArray:
    """Return how much of each pixel (by its centre) lies within ``half`` + 0.5 px of ``centre``, 0 to 1."""
    reach = half + 0.5
    low = np.maximum(centres - 0.5, centre - reach)
    high = np.minimum(centres + 0.5, centre + reach)
    return np.asarray(np.clip(high - low, 0.0, 1.0), dtype=np.float64)
