"""Does a known solar-system body explain a detected moving source? Pure functions on pixel positions.

A body's predicted path is a straight line in cutout pixels (SkyBoT's position at its epoch moved along its rates;
over a window of at most two days a main-belt asteroid's path bends by far less than a pixel). It *matches* a
detected track when, at the track's closest approach to the target, the two positions are within
`MATCH_DISTANCE_PX` and their velocities differ by at most `MATCH_VELOCITY_FRACTION` of the track's speed (plus
`MATCH_VELOCITY_FLOOR_PX_PER_HOUR` for the fit's own error on a slow track): the same place, the same way, as fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from service.science.pixels import HOURS_PER_DAY
from service.science.tracks import Track

MATCH_DISTANCE_PX = 3.0
MATCH_VELOCITY_FRACTION = 0.3
MATCH_VELOCITY_FLOOR_PX_PER_HOUR = 0.1


@dataclass(frozen=True)
class PredictedPath:
    """Where a body is predicted to be (cutout pixels) at an epoch, and its velocity (pixels per hour)."""

    epoch_btjd: float
    xy: tuple[float, float]
    velocity_px_per_hour: tuple[float, float]

    def at(self, time_btjd: float) -> tuple[float, float]:
        """Return the predicted position at ``time_btjd``."""
        hours = (time_btjd - self.epoch_btjd) * HOURS_PER_DAY
        return self.xy[0] + self.velocity_px_per_hour[0] * hours, self.xy[1] + self.velocity_px_per_hour[1] * hours

    @property
    def speed_px_per_hour(self) -> float:
        """Return the predicted speed, pixels per hour."""
        return math.hypot(*self.velocity_px_per_hour)

    def crosses_box(self, start_btjd: float, end_btjd: float, shape: tuple[int, int], margin_px: float) -> bool:
        """Return whether the path comes within ``margin_px`` of an image of ``shape`` (ny, nx) in [start, end]."""
        ny, nx = shape
        times = np.linspace(start_btjd, end_btjd, 97)
        hours = (times - self.epoch_btjd) * HOURS_PER_DAY
        xs = self.xy[0] + self.velocity_px_per_hour[0] * hours
        ys = self.xy[1] + self.velocity_px_per_hour[1] * hours
        inside = (xs >= -0.5 - margin_px) & (xs <= nx - 0.5 + margin_px)
        inside &= (ys >= -0.5 - margin_px) & (ys <= ny - 0.5 + margin_px)
        return bool(inside.any())


def track_state(track: Track, time_btjd: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Return the track's position at ``time_btjd`` and its velocity (pixels per hour), by least squares."""
    points = np.asarray(track.points, dtype=np.float64)
    hours = (points[:, 0] - time_btjd) * HOURS_PER_DAY
    vx, x = np.polyfit(hours, points[:, 1], 1)
    vy, y = np.polyfit(hours, points[:, 2], 1)
    return (float(x), float(y)), (float(vx), float(vy))


def matches_track(path: PredictedPath, track: Track) -> bool:
    """Return whether the predicted path and the detected track are the same body (see the module's notes)."""
    when = track.closest_approach_btjd
    (x, y), (vx, vy) = track_state(track, when)
    px, py = path.at(when)
    pvx, pvy = path.velocity_px_per_hour
    close = math.hypot(px - x, py - y) <= MATCH_DISTANCE_PX
    alike = math.hypot(pvx - vx, pvy - vy) <= (
        MATCH_VELOCITY_FRACTION * math.hypot(vx, vy) + MATCH_VELOCITY_FLOOR_PX_PER_HOUR
    )
    return close and alike
