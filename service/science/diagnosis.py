"""What caused an event, from the pixels of a cutout around it. Pure functions on arrays.

The methods, in the spirit of ``diagnosis-methods.md`` ("From pixels to a cause"):

1. **Frames** (`select_frames`): in-event frames are those inside the window [start, end]; reference frames lie
   0.75-1.75 durations before and after it (as exo-pt/TESS-Centroid_vetting does), widened to at least
   `MIN_REFERENCE_DAYS` on each side so a short window still has a usable reference. Frames flagged with
   `FLAGGED_QUALITY` (attitude tweak 1, safe mode 2, coarse point 4, earth point 8, Argabrightening 16, momentum
   dump 32, manual exclude 128) are left out of both.
2. **Background** (`background_change`): per frame, the median of the faint pixels (outside the aperture grown by
   `BACKGROUND_GAP_PX`, fainter than the median of the static image). It *departs* when the window's median level
   is more than `BACKGROUND_DEPARTURE_SIGMA` times the reference's robust scatter away from the reference's level,
   and is a *ramp* when it also moves smoothly: a parabola through the window's levels leaves residuals under
   `RAMP_RESIDUAL_FRACTION` of the largest change (a slow rise and fall, not one frame's spike).
3. **Difference image** (`difference_image`): each frame minus its background level, then the reference mean minus
   the in-event mean. Its peak is the most significant pixel of the 3×3-summed image (summed difference over its
   propagated error); the centroid is flux-weighted over a 5-px box centred on it, re-centred on the centroid
   `CENTROID_ITERATIONS` times with fractional edge pixels (no pull towards a pixel's centre). Errors are
   propagated, not bootstrapped: each pixel's variance is its scatter over the reference frames times
   (1/n_reference + 1/n_in_event), and the centroid's variance is Σ σ²ᵢ (xᵢ - x̄)² / (Σ wᵢ)². The offset's sigma
   is that error projected on the offset's direction. The box's summed difference over its error is the SNR.
4. **Moving source** (`find_track`): over the frames around the window (in-event, reference and those between),
   each frame minus the static per-pixel median, 3×3-summed and divided by each pixel's robust scatter over time;
   the brightest residual per frame, where above `TRACK_MIN_SNR`, is a point. A straight line in (t, x) and (t, y)
   is fitted RANSAC-like (every pair of points, or a seeded sample of pairs, proposes a line; the one with most
   points within `TRACK_INLIER_PX` is refitted by least squares on them). No track (None) when too few points, too
   few of them on the line, a poor fit, or a source that does not move.
5. **Verdict** (`judge`): the first rule that holds, in this order: a track crossing the aperture near the window,
   or its background pixels while the difference image (without the mover's path) shows nothing → moving_object; flagged
   frames in the window and no pixel evidence (no significant difference) → systematics; the background departs in
   a ramp → scattered_light; the difference centroid further than max(3 σ, 1 px) from the target → off_target; a
   significant difference on the target → on_target; else inconclusive. Pure noise is *inconclusive*: without a
   significant difference there is nothing to place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

Verdict = Literal["on_target", "off_target", "moving_object", "scattered_light", "systematics", "inconclusive"]
Crossing = Literal["aperture", "background", "neither"]

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
BACKGROUND_DEPARTURE_SIGMA = 5.0
RAMP_RESIDUAL_FRACTION = 0.25
RAMP_MIN_FRAMES = 4
CENTROID_HALF_BOX_PX = 2
CENTROID_ITERATIONS = 3
MIN_DIFFERENCE_SNR = 6.0
OFFSET_SIGMAS = 3.0
MIN_OFFSET_PX = 1.0
TRACK_MIN_SNR = 6.0
TRACK_MIN_POINTS = 5
TRACK_MIN_INLIER_FRACTION = 0.6
TRACK_INLIER_PX = 1.5
TRACK_MAX_RMS_PX = 1.0
TRACK_MIN_SPEED_PX_PER_HOUR = 0.2
TRACK_MIN_TRAVEL_PX = 2.0
TRACK_MAX_PAIRS = 2000
# A track explains the event when it crosses the aperture or the background within this many durations of it.
TRACK_NEAR_DURATIONS = 0.5
TRACK_SAMPLES = 200
TRACK_PATH_PX = 5  # a bright mover's PSF wings stay significant in a difference image this far from its path


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


@dataclass(frozen=True)
class DifferenceImage:
    """Reference mean minus in-event mean (e-/s), its centroid and how far, and how surely, it is off the target."""

    image: FloatArray
    centroid_xy: tuple[float, float]
    offset_px: float
    offset_arcsec: float
    offset_sigma_px: float
    offset_significance: float  # offset / its sigma
    snr: float  # signed: > 0 when the source dimmed in the event


@dataclass(frozen=True)
class Track:
    """A source moving along a straight line through the frames around the event."""

    points: tuple[tuple[float, float, float], ...]  # (BTJD, column, row) of the points on the line
    speed_px_per_hour: float
    speed_arcsec_per_hour: float
    position_angle_deg: float  # east of north
    closest_approach_px: float
    closest_approach_btjd: float
    crosses: Crossing
    rms_px: float
    path: BoolArray  # (ny, nx): the pixels within `TRACK_PATH_PX` of its path near the window


@dataclass(frozen=True)
class BackgroundChange:
    """The background level (e-/s per pixel) in the window and the reference, and whether it departs in a ramp."""

    window_level: float
    reference_level: float
    reference_scatter: float
    departure_sigma: float
    departs: bool
    ramp: bool
    flagged_in_window: int
    flags_in_window: int  # OR of the QUALITY of the window's frames


@dataclass(frozen=True)
class Judgement:
    """The verdict, how sure (0-1), and one sentence saying why."""

    verdict: Verdict
    confidence: float
    explanation: str


@dataclass(frozen=True)
class Diagnosis:
    """Everything measured on the pixels, and the verdict drawn from it."""

    frames: Frames
    difference: DifferenceImage | None
    track: Track | None
    background: BackgroundChange
    judgement: Judgement


def diagnose(series: PixelSeries, start_btjd: float, end_btjd: float, *, north_pa_deg: float = 0.0) -> Diagnosis:
    """Diagnose the event in [start_btjd, end_btjd] from the pixels (``north_pa_deg``: see `find_track`)."""
    series = finite_series(series)
    frames = select_frames(series.time_btjd, series.quality, start_btjd, end_btjd)
    levels = background_levels(series)
    background = background_change(levels, series.quality, frames)
    track = find_track(series, frames, north_pa_deg=north_pa_deg)
    # A mover that misses the aperture is left out of the difference image, so it cannot hide a change elsewhere.
    masked = track.path if track is not None and track.crosses != "aperture" else None
    difference = difference_image(series, levels, frames, masked=masked)
    return Diagnosis(frames, difference, track, background, judge(difference, track, background, frames))


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
    duration = end_btjd - start_btjd
    near = REFERENCE_NEAR_DURATIONS * duration
    far = max(REFERENCE_FAR_DURATIONS * duration, near + MIN_REFERENCE_DAYS)
    flagged = (np.asarray(quality, dtype=np.int64) & FLAGGED_QUALITY) != 0
    time = np.asarray(time_btjd, dtype=np.float64)
    window = (time >= start_btjd) & (time <= end_btjd)
    before = (time >= start_btjd - far) & (time <= start_btjd - near)
    after = (time >= end_btjd + near) & (time <= end_btjd + far)
    around = (time >= start_btjd - far) & (time <= end_btjd + far)
    return Frames(
        window, window & ~flagged, (before | after) & ~flagged, flagged, around & ~flagged, start_btjd, end_btjd
    )


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


def background_levels(series: PixelSeries) -> FloatArray:
    """Return each frame's background level: the median of its faint pixels (e-/s per pixel)."""
    static = np.nanmedian(series.flux, axis=0)
    faint = background_pixels(series, static)
    return np.asarray(np.nanmedian(series.flux[:, faint], axis=1), dtype=np.float64)


def background_change(levels: FloatArray, quality: IntArray, frames: Frames) -> BackgroundChange:
    """Return how the window's background compares with the reference's: does it depart, and in a slow ramp."""
    window_all = frames.window
    reference = levels[frames.reference]
    window = levels[frames.in_event]
    flags = int(np.bitwise_or.reduce(quality[window_all])) if window_all.any() else 0
    if reference.size < MIN_REFERENCE_FRAMES or window.size == 0:
        nan = math.nan
        return BackgroundChange(nan, nan, nan, nan, False, False, int(frames.flagged[window_all].sum()), flags)
    level = float(np.median(reference))
    scatter = max(float(MAD_TO_SIGMA * np.median(np.abs(reference - level))), 1e-12)
    departure = float(np.median(window)) - level
    sigma = abs(departure) / scatter
    departs = sigma > BACKGROUND_DEPARTURE_SIGMA
    ramp = departs and _smooth(window - level)
    flagged = int((frames.flagged & window_all).sum())
    return BackgroundChange(float(np.median(window)), level, scatter, sigma, departs, ramp, flagged, flags)


def _smooth(change: FloatArray) -> bool:
    """Return whether the window's background change is slow: a parabola follows it (a one-frame spike it cannot).

    With too few frames for a parabola to say anything, every frame must have moved the same way.
    """
    largest = float(np.max(np.abs(change)))
    if change.size < RAMP_MIN_FRAMES:
        return bool(np.all(np.sign(change) == np.sign(change[0])))
    steps = np.arange(change.size, dtype=np.float64)
    residual = change - np.polyval(np.polyfit(steps, change, 2), steps)
    return float(np.sqrt(np.mean(residual**2))) < RAMP_RESIDUAL_FRACTION * largest


def difference_image(
    series: PixelSeries, levels: FloatArray, frames: Frames, *, masked: BoolArray | None = None
) -> DifferenceImage | None:
    """Return the reference-minus-event image, its centroid and offset from the target; None without frames.

    ``masked`` pixels (a moving source's path) take no part: zero difference, infinite variance.
    """
    n_in, n_ref = int(frames.in_event.sum()), int(frames.reference.sum())
    if n_in == 0 or n_ref < MIN_REFERENCE_FRAMES:
        return None
    flux = series.flux - levels[:, None, None]
    reference = flux[frames.reference]
    image = np.asarray(np.nanmean(reference, axis=0) - np.nanmean(flux[frames.in_event], axis=0), dtype=np.float64)
    variance = np.nanvar(reference, axis=0, ddof=1) * (1.0 / n_ref + 1.0 / n_in)
    image = np.where(np.isfinite(image), image, 0.0)
    variance = np.where(np.isfinite(variance), variance, np.inf)
    if masked is not None:
        variance = np.where(masked, np.inf, variance)
        image = np.where(masked, 0.0, image)
    row, column = _peak(image, variance)
    sign = 1.0 if _box(image, row, column, 1).sum() >= 0 else -1.0
    x, y = float(column), float(row)
    for _ in range(CENTROID_ITERATIONS):
        (x, y), (sx2, sy2, sxy), snr = _centroid(sign * image, variance, x, y)
    dx, dy = x - series.target_xy[0], y - series.target_xy[1]
    offset = math.hypot(dx, dy)
    # The offset's error along its own direction (the centroid's covariance projected), or the mean when on it.
    if offset > 0:
        along = (dx * dx * sx2 + dy * dy * sy2 + 2 * dx * dy * sxy) / (offset * offset)
    else:
        along = (sx2 + sy2) / 2
    sigma = math.sqrt(max(along, 0.0))
    significance = offset / sigma if sigma > 0 else math.inf
    return DifferenceImage(image, (x, y), offset, offset * ARCSEC_PER_PX, sigma, significance, sign * snr)


def _sum3(cube: FloatArray) -> FloatArray:
    """Return the 3×3 sum around each pixel of the last two axes (zero-padded)."""
    pad = [(0, 0)] * (cube.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(cube, pad)
    ny, nx = cube.shape[-2:]
    return sum((padded[..., i : i + ny, j : j + nx] for i in range(3) for j in range(3)), np.zeros_like(cube))


def _peak(image: FloatArray, variance: FloatArray) -> tuple[int, int]:
    """Return the (row, column) where the 3×3-summed image is most significant, either sign."""
    significance = np.abs(_sum3(image)) / np.sqrt(_sum3(np.where(np.isfinite(variance), variance, 0.0)) + 1e-30)
    significance = np.where(np.isfinite(_sum3(variance)), significance, 0.0)
    row, column = np.unravel_index(int(np.argmax(significance)), image.shape)
    return int(row), int(column)


def _box(image: FloatArray, row: int, column: int, half: int) -> FloatArray:
    return image[max(row - half, 0) : row + half + 1, max(column - half, 0) : column + half + 1]


def _centroid(
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
    xs, ys = _box(columns.astype(float), row, column, half + 1), _box(rows.astype(float), row, column, half + 1)
    inside = _overlap(xs, x, half) * _overlap(ys, y, half)
    weights = inside * _box(image, row, column, half + 1)
    var = _box(variance, row, column, half + 1)
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


def find_track(series: PixelSeries, frames: Frames, *, north_pa_deg: float = 0.0) -> Track | None:
    """Return the straight track of a moving source through the frames around the event, or None.

    ``north_pa_deg`` is the position angle (east of north) of the +row axis: 0 when +row is north and +column is
    east, as assumed without a WCS; a mirrored WCS is not handled.
    """
    points = _residual_peaks(series, frames)
    if points is None or points.shape[0] < TRACK_MIN_POINTS:
        return None
    inliers = _ransac_line(points)
    if inliers.sum() < TRACK_MIN_POINTS or inliers.mean() < TRACK_MIN_INLIER_FRACTION:
        return None
    t, x, y = points[inliers].T
    t0 = float(t.mean())
    (vx, x0), (vy, y0) = np.polyfit(t - t0, x, 1), np.polyfit(t - t0, y, 1)
    rms = float(np.sqrt(np.mean((x - (x0 + vx * (t - t0))) ** 2 + (y - (y0 + vy * (t - t0))) ** 2)))
    speed = math.hypot(vx, vy) / HOURS_PER_DAY
    travel = speed * HOURS_PER_DAY * float(t.max() - t.min())
    if rms > TRACK_MAX_RMS_PX or speed < TRACK_MIN_SPEED_PX_PER_HOUR or travel < TRACK_MIN_TRAVEL_PX:
        return None
    tx, ty = series.target_xy
    along = ((tx - x0) * vx + (ty - y0) * vy) / (vx * vx + vy * vy)
    approach = math.hypot(x0 + vx * along - tx, y0 + vy * along - ty)
    angle = (math.degrees(math.atan2(vx, vy)) + north_pa_deg) % 360.0
    crosses, path = _crossing(series, frames, (t0, x0, y0, vx, vy))
    kept = tuple((float(a), float(b), float(c)) for a, b, c in points[inliers])
    return Track(kept, speed, speed * ARCSEC_PER_PX, angle, approach, t0 + along, crosses, rms, path)


def _residual_peaks(series: PixelSeries, frames: Frames) -> FloatArray | None:
    """Return (BTJD, column, row) of each surrounding frame's significant brightest residual, or None."""
    index = np.flatnonzero(frames.around)
    if index.size < 2 * TRACK_MIN_POINTS:
        return None
    cube = series.flux[index]
    residual = cube - np.nanmedian(cube, axis=0)
    residual -= np.nanmedian(residual, axis=(1, 2))[:, None, None]  # a uniform background change is no source
    residual = np.where(np.isfinite(residual), residual, 0.0)
    summed = _sum3(residual)
    scatter = MAD_TO_SIGMA * np.median(np.abs(summed - np.median(summed, axis=0)), axis=0)
    snr = summed / np.maximum(scatter, 1e-12)
    flat = snr.reshape(index.size, -1)
    best = np.argmax(flat, axis=1)
    significant = flat[np.arange(index.size), best] > TRACK_MIN_SNR
    rows, columns = np.unravel_index(best, snr.shape[1:])
    points = []
    for k in np.flatnonzero(significant):
        (x, y), _, _ = _centroid(np.clip(residual[k], 0.0, None), np.zeros(residual[k].shape), columns[k], rows[k])
        points.append((float(series.time_btjd[index[k]]), x, y))
    return np.asarray(points, dtype=np.float64).reshape(-1, 3)


def _ransac_line(points: FloatArray) -> BoolArray:
    """Return the points within `TRACK_INLIER_PX` of the line (through two of them) that holds the most."""
    n = points.shape[0]
    first, second = np.triu_indices(n, k=1)
    if first.size > TRACK_MAX_PAIRS:
        pick = np.random.default_rng(0).choice(first.size, TRACK_MAX_PAIRS, replace=False)
        first, second = first[pick], second[pick]
    t, x, y = points.T
    dt = t[second] - t[first]
    ok = dt > 0
    first, second, dt = first[ok], second[ok], dt[ok]
    vx, vy = (x[second] - x[first]) / dt, (y[second] - y[first]) / dt
    # Predicted positions of every point for every candidate line: (pairs, points).
    lag = t[None, :] - t[first][:, None]
    ex = x[None, :] - (x[first][:, None] + vx[:, None] * lag)
    ey = y[None, :] - (y[first][:, None] + vy[:, None] * lag)
    inliers = np.hypot(ex, ey) < TRACK_INLIER_PX
    if inliers.shape[0] == 0:
        return np.zeros(n, dtype=bool)
    return np.asarray(inliers[int(np.argmax(inliers.sum(axis=1)))], dtype=np.bool_)


def _crossing(
    series: PixelSeries, frames: Frames, line: tuple[float, float, float, float, float]
) -> tuple[Crossing, BoolArray]:
    """Return what the line crosses near the window (the aperture, the background pixels, or neither), and where."""
    t0, x0, y0, vx, vy = line
    margin = TRACK_NEAR_DURATIONS * frames.duration_days
    t = np.linspace(frames.start_btjd - margin, frames.end_btjd + margin, TRACK_SAMPLES) - t0
    columns, rows = np.rint(x0 + vx * t).astype(int), np.rint(y0 + vy * t).astype(int)
    ny, nx = series.aperture.shape
    inside = (rows >= 0) & (rows < ny) & (columns >= 0) & (columns < nx)
    rows, columns = rows[inside], columns[inside]
    path = np.zeros(series.aperture.shape, dtype=bool)
    path[rows, columns] = True
    for _ in range(TRACK_PATH_PX):
        padded = np.pad(path, 1)
        path = (padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]) | (
            padded[:-2, :-2] | padded[:-2, 2:] | padded[2:, :-2] | padded[2:, 2:]
        )
    if series.aperture[rows, columns].any():
        return "aperture", path
    faint = background_pixels(series, np.nanmedian(series.flux, axis=0))
    return ("background" if faint[rows, columns].any() else "neither"), path


def judge(
    difference: DifferenceImage | None, track: Track | None, background: BackgroundChange, frames: Frames
) -> Judgement:
    """Return the verdict: the first rule of the module's notes that holds."""
    evidence = difference is not None and abs(difference.snr) >= MIN_DIFFERENCE_SNR
    # A mover through the aperture explains the event; one through the background pixels only does when nothing
    # else changed (the difference image leaves the mover's path out): an asteroid far off does not explain a dip.
    if track is not None and (track.crosses == "aperture" or (track.crosses == "background" and not evidence)):
        confidence = min(1.0, len(track.points) / (2 * TRACK_MIN_POINTS)) * (1.0 - min(track.rms_px, 1.0) / 2)
        return Judgement(
            "moving_object",
            confidence,
            f"A source moving {track.speed_arcsec_per_hour:.0f} arcsec/h crosses the {track.crosses} pixels, "
            f"{track.closest_approach_px:.1f} px from the target at BTJD {track.closest_approach_btjd:.3f}.",
        )
    if background.flagged_in_window and not evidence:
        share = background.flagged_in_window / max(1, background.flagged_in_window + int(frames.in_event.sum()))
        return Judgement(
            "systematics",
            0.5 + 0.5 * share,
            f"{background.flagged_in_window} frames of the window are flagged (QUALITY {background.flags_in_window})"
            " and the good frames show no significant change in the pixels.",
        )
    if background.ramp:
        return Judgement(
            "scattered_light",
            1.0 - math.exp(-background.departure_sigma / BACKGROUND_DEPARTURE_SIGMA),
            f"The background departs from its reference by {background.departure_sigma:.0f} sigma, smoothly.",
        )
    if difference is None or not evidence:
        return _inconclusive(difference)
    return _placed(difference)


def _placed(difference: DifferenceImage) -> Judgement:
    """Return on_target or off_target for a significant difference image."""
    depth = 1.0 - math.exp(-abs(difference.snr) / MIN_DIFFERENCE_SNR)
    limit = max(OFFSET_SIGMAS * difference.offset_sigma_px, MIN_OFFSET_PX)
    if difference.offset_px > limit:
        return Judgement(
            "off_target",
            depth * (1.0 - math.exp(-difference.offset_px / limit + 1.0)),
            f"The change is centred {difference.offset_px:.1f} px ({difference.offset_arcsec:.0f} arcsec) from the "
            f"target, {difference.offset_significance:.1f} sigma away.",
        )
    return Judgement(
        "on_target",
        depth * (1.0 - difference.offset_px / limit / 2),
        f"The change is centred on the target (offset {difference.offset_px:.2f} px) at SNR {abs(difference.snr):.0f}.",
    )


def _inconclusive(difference: DifferenceImage | None) -> Judgement:
    if difference is None:
        return Judgement("inconclusive", 0.5, "Too few good frames in or around the window to compare.")
    return Judgement(
        "inconclusive",
        float(min(1.0, max(0.0, 1.0 - abs(difference.snr) / MIN_DIFFERENCE_SNR))),
        f"No significant change in the pixels (SNR {abs(difference.snr):.1f}), no moving source, a steady background.",
    )
