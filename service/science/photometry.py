"""Simple aperture photometry of an FFI cutout, its detrending, and TESS quality flags. Pure functions on arrays.

The method, in the spirit of lightkurve's ``create_threshold_mask`` and ``estimate_background``:

1. **Reference image**: the per-pixel median of the cutout's frames (of a sample of them, spread over the sector).
2. **Aperture**: the pixels brighter than the image's median by `THRESHOLD_SIGMA` times its robust scatter (the
   scaled median absolute deviation over all pixels), connected (4-neighbour) to the target's pixel, or to its
   brightest neighbour when the target's own pixel is not bright, without going uphill: a neighbouring star
   beyond a saddle stays out (lightkurve's threshold mask would take it in). A star too faint to give
   `MIN_APERTURE_PIXELS` such pixels gets a disk of `DISK_RADIUS_PX` around its position instead. At most
   `MAX_APERTURE_PIXELS` (and a quarter of the cutout) are kept, the nearest to the target, so a bright star's
   halo cannot grow the aperture across the cutout.
3. **Background**: per frame, the median of the background pixels: those outside the aperture grown by
   `BACKGROUND_GAP_PX` (touching it, diagonals included), fainter in the reference image than its
   `BACKGROUND_PERCENTILE`-th percentile there (stars and their wings are left out), and of those the
   `MAX_BACKGROUND_PIXELS` nearest the target. The median is robust to a star or an asteroid crossing a few of
   them. ``BACKGROUND`` is that per-pixel level times the aperture's pixel count, as SPOC's ``SAP_BKG`` is.
4. **Flux**: the sum over the aperture minus ``BACKGROUND``; NaN when a pixel of the aperture is NaN in that frame
   (a partial sum would be a biased one). ``FLUX_ERR`` adds in quadrature the pixels' own errors and the error of
   the background: the aperture's pixel count times the mean background pixel error × 1.2533 / √N (the error of
   a median of N pixels).
5. **Centroid**: flux-weighted, over the aperture's background-subtracted pixels, in cutout pixels (0-based, x the
   column), like the target pixel and the aperture; NaN when the net flux is not positive.

Every frame is measured on its own, so measuring the frames in chunks gives exactly what measuring them at once
would (`measure_frames`). `detrend` turns the raw flux into the relative, detrended series `find_events` expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

THRESHOLD_SIGMA = 3.0
MIN_APERTURE_PIXELS = 4
MAX_APERTURE_PIXELS = 100
DISK_RADIUS_PX = 1.5
BACKGROUND_GAP_PX = 1
BACKGROUND_PERCENTILE = 50.0
MIN_BACKGROUND_PIXELS = 4
MAX_BACKGROUND_PIXELS = 400
REFERENCE_BAND_VALUES = 1 << 18  # pixel values per band of the reference median (1 MB in float32)
MAD_TO_SIGMA = 1.4826
MEDIAN_ERROR_FACTOR = 1.2533  # the error of a median of N normal values is 1.2533 σ / √N
# Detrending: a window 2-3 times the longest event searched (a day), as wotan's documentation advises.
DETREND_WINDOW_DAYS = 2.5
DETREND_BINS_PER_WINDOW = 10
DETREND_MIN_BIN_POINTS = 3  # a bin's median needs this many cadences
DETREND_MIN_BINS = 4  # a knot's line needs this many bins with a median
DETREND_MAX_SPAN_DAYS = 10_000.0  # far beyond any sector; a longer span is a broken file, not a light curve

ApertureMethod = Literal["threshold", "disk"]

# TESS QUALITY bits (the TESS Science Data Products Description Document; lightkurve's TessQualityFlags).
QUALITY_FLAGS: dict[int, str] = {
    1: "attitude tweak",
    2: "safe mode",
    4: "coarse point",
    8: "earth point",
    16: "argabrightening",
    32: "momentum dump",
    64: "aperture cosmic",
    128: "manual exclude",
    256: "discontinuity",
    512: "impulsive outlier",
    1024: "collateral cosmic",
    2048: "stray light",
    4096: "scattered light",
    8192: "planet search exclude",
    16384: "bad calibration",
    32768: "insufficient targets",
}
# Cadences flagged with these bits are left out of detrending and event searches: lightkurve's "default" bitmask
# (attitude tweak, safe mode, coarse and earth point, argabrightening, momentum dump, manual exclude, impulsive
# outlier, bad calibration). Stray and scattered light stay in: they are what an event might be, and say so.
SEVERE_QUALITY = 1 | 2 | 4 | 8 | 16 | 32 | 128 | 512 | 16384


@dataclass(frozen=True)
class Aperture:
    """The pixels summed for the star, and how they were chosen (`threshold` or the faint star's `disk`)."""

    mask: BoolArray  # (ny, nx)
    method: ApertureMethod
    level: float  # the threshold, in the reference image's units (e-/s)

    @property
    def pixels_xy(self) -> list[tuple[int, int]]:
        """Return the aperture's pixels as (x, y) = (column, row), 0-based, row by row."""
        rows, columns = np.nonzero(self.mask)
        return list(zip(columns.tolist(), rows.tolist(), strict=True))


@dataclass(frozen=True)
class Photometry:
    """Per frame: net flux, its error, the background under the aperture (all e-/s), and the centroid (pixels)."""

    flux: FloatArray
    flux_err: FloatArray
    background: FloatArray
    centroid_col: FloatArray
    centroid_row: FloatArray

    @classmethod
    def joined(cls, parts: list[Photometry]) -> Photometry:
        """Return the photometry of consecutive chunks of frames as one."""
        if not parts:
            empty = np.empty(0)
            return cls(empty, empty, empty, empty, empty)
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _PHOTOMETRY_FIELDS))


_PHOTOMETRY_FIELDS = ("flux", "flux_err", "background", "centroid_col", "centroid_row")


def reference_image(frames: npt.ArrayLike) -> FloatArray:
    """Return the per-pixel median of ``frames`` (n, ny, nx), ignoring NaN; NaN where a pixel is never finite.

    Taken a band of rows at a time, in the frames' own precision: the median's working copy stays small.
    """
    stack = np.asarray(frames)
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise ValueError("a reference image needs at least one frame of (ny, nx) pixels")
    if stack.dtype.kind != "f":
        stack = stack.astype(np.float64)
    image = np.empty(stack.shape[1:], dtype=np.float64)
    band = max(1, REFERENCE_BAND_VALUES // (stack.shape[0] * stack.shape[2]))
    for first in range(0, stack.shape[1], band):
        rows = slice(first, first + band)
        # Frames on the last axis: each pixel's values are one row, for `_by_row`.
        image[rows] = _by_row(np.moveaxis(stack[:, rows], 0, -1).reshape(-1, stack.shape[0]), "median").reshape(
            image[rows].shape
        )
    return image


def _grow(mask: BoolArray, steps: int = 1, *, diagonal: bool = True) -> BoolArray:
    """Return ``mask`` grown by ``steps`` pixels (8-neighbour, or 4-neighbour without ``diagonal``)."""
    grown = mask.copy()
    for _ in range(steps):
        padded = np.pad(grown, 1)
        step = padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
        if diagonal:
            step |= padded[:-2, :-2] | padded[:-2, 2:] | padded[2:, :-2] | padded[2:, 2:]
        grown = step
    return grown


def _star_region(bright: BoolArray, image: FloatArray, seed: tuple[int, int], tolerance: float) -> BoolArray:
    """Return the bright pixels reached from ``seed`` (row, column) going 4-neighbour and never uphill.

    A pixel joins when it is no brighter than a neighbour already in the region (give or take ``tolerance``, the
    image's noise): the region runs down the star's profile and stops at the saddle between it and a neighbour,
    where a plain connected region would take the neighbour in too.
    """
    region = np.zeros_like(bright)
    region[seed] = True
    while True:
        values = np.pad(np.where(region, image, -np.inf), 1, constant_values=-np.inf)
        brightest_neighbour = np.maximum.reduce(
            [values[:-2, 1:-1], values[2:, 1:-1], values[1:-1, :-2], values[1:-1, 2:]]
        )
        joining = bright & ~region & (image <= brightest_neighbour + tolerance)
        if not joining.any():
            return region
        region |= joining


def _distances(shape: tuple[int, int], target_xy: tuple[float, float]) -> FloatArray:
    rows, columns = np.indices(shape)
    return np.asarray(np.hypot(columns - target_xy[0], rows - target_xy[1]), dtype=np.float64)


def _seed(bright: BoolArray, image: FloatArray, target_xy: tuple[float, float]) -> tuple[int, int] | None:
    """Return the target's pixel (row, column) if bright, else its brightest bright neighbour, else None."""
    ny, nx = bright.shape
    row = min(max(round(target_xy[1]), 0), ny - 1)
    column = min(max(round(target_xy[0]), 0), nx - 1)
    if bright[row, column]:
        return row, column
    rows, columns = slice(max(row - 1, 0), row + 2), slice(max(column - 1, 0), column + 2)
    around = np.where(bright[rows, columns], image[rows, columns], -np.inf)
    if not np.isfinite(around.max()):
        return None
    dy, dx = np.unravel_index(int(np.argmax(around)), around.shape)
    return rows.start + int(dy), columns.start + int(dx)


def _nearest(mask: BoolArray, distance: FloatArray, count: int) -> BoolArray:
    """Return the ``count`` pixels of ``mask`` nearest the target (all of them when there are fewer)."""
    if int(mask.sum()) <= count:
        return mask
    ranked = np.argsort(np.where(mask, distance, np.inf), axis=None, kind="stable")[:count]
    kept = np.zeros(mask.size, dtype=bool)
    kept[ranked] = True
    return kept.reshape(mask.shape)


def threshold_aperture(
    image: npt.ArrayLike,
    target_xy: tuple[float, float],
    *,
    threshold_sigma: float = THRESHOLD_SIGMA,
    max_pixels: int = MAX_APERTURE_PIXELS,
) -> Aperture:
    """Return the target's aperture on a reference image (see the module doc); raise ValueError without data."""
    reference = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(reference)
    if not finite.any():
        raise ValueError("the cutout has no pixel with data")
    values = reference[finite]
    median = float(np.median(values))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    level = median + threshold_sigma * sigma
    bright = finite & (reference > level)
    distance = _distances(reference.shape, target_xy)
    cap = max(1, min(max_pixels, int(finite.sum()) // 4))
    seed = _seed(bright, reference, target_xy)
    region = _star_region(bright, reference, seed, sigma) if seed is not None else np.zeros_like(bright)
    if int(region.sum()) >= MIN_APERTURE_PIXELS:
        return Aperture(_nearest(region, distance, cap), "threshold", level)
    disk = finite & (distance <= DISK_RADIUS_PX)
    if not disk.any():  # the target's position is off the data: its nearest pixel with data
        disk = _nearest(finite, distance, 1)
    return Aperture(_nearest(disk, distance, cap), "disk", level)


def background_pixels(
    image: npt.ArrayLike,
    aperture: BoolArray,
    target_xy: tuple[float, float],
    *,
    gap_px: int = BACKGROUND_GAP_PX,
    percentile: float = BACKGROUND_PERCENTILE,
) -> BoolArray:
    """Return the pixels whose per-frame median is the background (see the module doc); may be empty.

    When too few pixels lie beyond the gap (a small cutout), the gap is dropped. Of the faint pixels, the
    `MAX_BACKGROUND_PIXELS` nearest the target are kept: the sky where the star is, and a bounded cost per frame.
    """
    reference = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(reference)
    candidates = finite & ~_grow(aperture, gap_px)
    if int(candidates.sum()) < MIN_BACKGROUND_PIXELS:
        candidates = finite & ~aperture
    if not candidates.any():
        return candidates
    cut = float(np.percentile(reference[candidates], percentile))
    return _nearest(candidates & (reference <= cut), _distances(reference.shape, target_xy), MAX_BACKGROUND_PIXELS)


def _by_row(values: npt.NDArray[np.floating[Any]], reduce: str) -> FloatArray:
    """Return each row's median or mean (``reduce``) ignoring NaN; NaN for a row with no finite value (no warning)."""
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    missing = np.isnan(values)
    if not missing.any():
        return np.asarray(np.median(values, axis=1) if reduce == "median" else values.mean(axis=1), dtype=np.float64)
    # nanmedian warns on a row without values; warnings filters are process-wide, so fill those rows rather than hush.
    empty = np.asarray(missing.all(axis=1), dtype=bool)
    filled = np.where(empty[:, np.newaxis], 0.0, values)
    result = np.nanmedian(filled, axis=1) if reduce == "median" else np.nanmean(filled, axis=1)
    result[empty] = np.nan
    return np.asarray(result, dtype=np.float64)


def measure_frames(
    flux: npt.ArrayLike, flux_err: npt.ArrayLike, aperture: BoolArray, background: BoolArray
) -> Photometry:
    """Return the photometry of frames (n, ny, nx) of FLUX and FLUX_ERR through ``aperture`` (see the module doc).

    Without background pixels the background is taken as zero.
    """
    frames = np.asarray(flux)
    errors = np.asarray(flux_err)
    inside = frames[:, aperture].astype(np.float64)
    n_aperture = inside.shape[1]
    if background.any():
        sky_values = frames[:, background].astype(np.float64)
        sky = _by_row(sky_values, "median")
        # The mean pixel error: as good as their median for errors that vary smoothly, at a tenth of the cost.
        sky_sigma = _by_row(errors[:, background].astype(np.float64), "mean")
        n_sky = np.maximum(np.count_nonzero(np.isfinite(sky_values), axis=1), 1)
        sky_err = n_aperture * MEDIAN_ERROR_FACTOR * sky_sigma / np.sqrt(n_sky)
    else:
        sky = sky_err = np.zeros(frames.shape[0])
    net = inside - sky[:, np.newaxis]
    total = net.sum(axis=1)
    flux_error = np.sqrt(np.square(errors[:, aperture].astype(np.float64)).sum(axis=1) + np.square(sky_err))
    rows, columns = np.nonzero(aperture)
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = total > 0
        centroid_col = np.where(positive, (net @ columns.astype(np.float64)) / total, np.nan)
        centroid_row = np.where(positive, (net @ rows.astype(np.float64)) / total, np.nan)
    return Photometry(total, flux_error, sky * n_aperture, centroid_col, centroid_row)


def detrend(
    time_btjd: npt.ArrayLike,
    flux: npt.ArrayLike,
    usable: npt.ArrayLike | None = None,
    *,
    window_days: float = DETREND_WINDOW_DAYS,
) -> FloatArray:
    """Return ``flux`` relative to its trend, minus 1 (0 is the trend); NaN where it cannot be told.

    The trend is a running median that follows slopes. The ``usable`` cadences (all, when None) are binned a tenth
    of a window wide, each bin's median taken; at every bin edge, the trend is the level there of a robust line
    through the bins of the ``window_days`` around it: its slope the median of the slopes between pairs of bins
    (Theil–Sen), its level the median of the bins along that slope. A dip or bump covering less than half the
    window (a day-long event in a 2.5-day window) moves neither, even on a trend steeper than the event is deep,
    where a plain running median would follow the event into the trend; slower changes (scattered light, pointing
    drift, the star's own variability) are taken out, up to curvature within a window. At the ends of the data the
    window is cut short and the line carries the slope to the edge. Between those edges the trend is linear. Where
    it is not positive (a faint star's over-subtracted flux) the relative flux is NaN.
    """
    time = np.asarray(time_btjd, dtype=np.float64).reshape(-1)
    values = np.asarray(flux, dtype=np.float64).reshape(-1)
    if time.size != values.size:
        raise ValueError(f"time and flux differ in length ({time.size} and {values.size}).")
    measured = np.isfinite(time) & np.isfinite(values)
    keep = measured if usable is None else measured & np.asarray(usable, dtype=bool).reshape(-1)
    relative = np.full(values.size, np.nan)
    knots = _trend_knots(time[keep], values[keep], window_days)
    if knots is None:
        return relative
    trend = np.interp(time[measured], *knots)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative[measured] = np.where(trend > 0, values[measured] / trend - 1.0, np.nan)
    return relative


def _bin_medians(time: FloatArray, flux: FloatArray, width_days: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return the bin edges from the first time on, and each bin's median time and flux (NaN when too sparse)."""
    edges = time[0] + width_days * np.arange(int((time[-1] - time[0]) / width_days) + 2)
    bounds = np.searchsorted(time, edges, side="left")
    bin_time, bin_flux = np.full(edges.size - 1, np.nan), np.full(edges.size - 1, np.nan)
    for index, (a, b) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
        if b - a >= DETREND_MIN_BIN_POINTS:
            bin_time[index], bin_flux[index] = np.median(time[a:b]), np.median(flux[a:b])
    return edges, bin_time, bin_flux


def _robust_level(time: FloatArray, flux: FloatArray, at: float) -> float:
    """Return the level at ``at`` of the Theil–Sen line through the points (time, flux)."""
    first, second = np.triu_indices(time.size, k=1)
    slope = float(np.median((flux[second] - flux[first]) / (time[second] - time[first])))
    return float(np.median(flux - slope * (time - at)))


def _trend_knots(time: FloatArray, flux: FloatArray, window_days: float) -> tuple[FloatArray, FloatArray] | None:
    """Return the trend's knots (times increasing, levels), or None when too few cadences tell it."""
    if time.size < DETREND_MIN_BIN_POINTS * DETREND_MIN_BINS or np.ptp(time) > DETREND_MAX_SPAN_DAYS:
        return None
    order = np.argsort(time, kind="stable")
    edges, bin_time, bin_flux = _bin_medians(time[order], flux[order], window_days / DETREND_BINS_PER_WINDOW)
    half = DETREND_BINS_PER_WINDOW // 2
    knot_time, knot_level = [], []
    for index, edge in enumerate(edges.tolist()):
        near = slice(max(index - half, 0), index + half)
        sampled = np.isfinite(bin_time[near])
        if np.count_nonzero(sampled) >= DETREND_MIN_BINS:
            knot_time.append(edge)
            knot_level.append(_robust_level(bin_time[near][sampled], bin_flux[near][sampled], edge))
    return (np.array(knot_time), np.array(knot_level)) if knot_time else None


def quality_names(quality: int) -> list[str]:
    """Return the names of the QUALITY bits set in ``quality``, lowest bit first (``bit N`` for unnamed bits)."""
    names = []
    bit = 1
    remaining = int(quality) & 0xFFFFFFFF  # QUALITY is a 32-bit field
    while remaining > 0:
        if remaining & bit:
            names.append(QUALITY_FLAGS.get(bit, f"bit {bit}"))
            remaining &= ~bit
        bit <<= 1
    return names


def window_quality(time_btjd: npt.ArrayLike, quality: npt.ArrayLike, start_btjd: float, end_btjd: float) -> int:
    """Return the bitwise OR of the QUALITY of every cadence from ``start_btjd`` to ``end_btjd``, inclusive."""
    time = np.asarray(time_btjd, dtype=np.float64)
    flags = np.asarray(quality, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        inside = (time >= start_btjd) & (time <= end_btjd)
    return int(np.bitwise_or.reduce(flags[inside])) if inside.any() else 0
