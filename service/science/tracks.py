"""A source moving in a straight line through the frames around an event (method 4 of `diagnosis`). Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.science.pixels import (
    ARCSEC_PER_PX,
    HOURS_PER_DAY,
    MAD_TO_SIGMA,
    BoolArray,
    FloatArray,
    Frames,
    PixelSeries,
    background_pixels,
    centroid,
    sum3,
)

Crossing = Literal["aperture", "background", "neither"]

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
# The static image and each pixel's scatter come from at least this many days either side of the window: over the
# short span around a short window a slow mover (0.5 px/h) covers a pixel in a third of the frames, raising that
# pixel's median and scatter along its path, which pushed the points outwards and made the track too fast.
TRACK_BASELINE_DAYS = 1.0


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
    time = series.time_btjd
    reach = TRACK_BASELINE_DAYS
    baseline = frames.around | (
        ~frames.flagged & (time >= frames.start_btjd - reach) & (time <= frames.end_btjd + reach)
    )
    cube = series.flux[baseline]
    residual = cube - np.nanmedian(cube, axis=0)
    residual -= np.nanmedian(residual, axis=(1, 2))[:, None, None]  # a uniform background change is no source
    residual = np.where(np.isfinite(residual), residual, 0.0)
    summed = sum3(residual)
    scatter = MAD_TO_SIGMA * np.median(np.abs(summed - np.median(summed, axis=0)), axis=0)
    searched = frames.around[baseline]
    residual, summed = residual[searched], summed[searched]
    snr = summed / np.maximum(scatter, 1e-12)
    flat = snr.reshape(index.size, -1)
    best = np.argmax(flat, axis=1)
    significant = flat[np.arange(index.size), best] > TRACK_MIN_SNR
    rows, columns = np.unravel_index(best, snr.shape[1:])
    points = []
    for k in np.flatnonzero(significant):
        (x, y), _, _ = centroid(np.clip(residual[k], 0.0, None), np.zeros(residual[k].shape), columns[k], rows[k])
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
