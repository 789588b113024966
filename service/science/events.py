"""Single events in a light curve: where it dips or bumps beyond its own noise. Pure functions on arrays.

The method is the box matched filter used for single events in practice (see ``../shared/diagnosis-methods.md``):

1. For each box duration (30 min to a day, `DURATIONS_HOURS`), the mean of the flux in a box centred on every
   cadence, from cumulative sums over time (gaps are gaps: a box holds the cadences inside its time span). A box
   needs at least half the cadences its span would hold, so the edges of gaps are not sampled by two points.
2. A box that holds fewer cadences than its span would (at a gap's edge) has a noisier mean, so each mean is
   weighed by the square root of its coverage (capped at 1) before anything else: for white noise that makes
   every box equally noisy, and for red noise it errs on the side of calling a half-empty box noisier than it is.
   Without it, a day-long box half in a gap scores its half-day of data against a full day's noise: gap edges
   gave false events, and a long box beat the right one on an event next to a gap.
3. The noise of each duration is the scaled median absolute deviation of its own weighed box means: red noise,
   which makes long boxes noisier than white noise would, counts as it is, and a few events cannot inflate it.
   Boxes a quarter of their length apart are nearly independent, so the MAD is taken on that subsample (keeping
   at least `NOISE_MIN_SAMPLES`, below which the subsample's MAD scatters visibly more than the full one's).
4. SNR = weighed mean / noise (negative for dips). The strongest box above the threshold, any duration, is an
   event; every box that overlaps its window widened by half its duration on each side is masked (the best box is
   often shorter than the event, whose unmasked rest would come back as a second event), and the next strongest
   is taken, until `max_events`.

The flux is relative and already detrended (DV's ``LC_DETREND``, or `detrend` for a raw light curve); its median
is taken as the baseline. Missing values are dropped; too few points, or a flat series, give no events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

EventKind = Literal["dip", "bump"]
FloatArray = npt.NDArray[np.float64]

# Box durations, a factor of √2 apart: a box within ~19 % of any event's duration keeps most of its SNR.
DURATIONS_HOURS: tuple[float, ...] = (0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0, 11.3, 16.0, 24.0)
# The pipeline's detection threshold (SPOC TPS, multiple-event statistic), in sigma.
DEFAULT_MIN_SNR = 7.1
# A box must hold at least this fraction of the cadences its span would hold at the median cadence.
MIN_COVERAGE = 0.5
# The MAD of box means is taken on box means this fraction of a box apart (nearly independent, and quick), as
# long as that leaves this many of them.
NOISE_STEP_FRACTION = 0.25
NOISE_MIN_SAMPLES = 1000
# An event masks the boxes that overlap its window widened by this fraction of its duration on each side.
MASK_WIDENING = 0.5
# Consecutive cadences further apart than this many median cadences are a gap.
GAP_CADENCES = 5.0
# An event is near a gap when a gap at least this fraction of its duration lies within half a duration of it.
GAP_FRACTION = 0.25
MAD_TO_SIGMA = 1.4826
HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class Event:
    """One anomalous window: its centre, extent, size (ppm, positive) and significance."""

    t0_btjd: float
    start_btjd: float
    end_btjd: float
    duration_hours: float
    kind: EventKind
    depth_ppm: float
    snr: float
    n_points: int
    near_gap: bool


@dataclass(frozen=True)
class Series:
    """A light curve cleaned for searching: finite points, sorted by time, the baseline subtracted."""

    time: FloatArray
    flux: FloatArray  # relative flux minus its median
    sums: FloatArray  # cumulative sums of flux, 0 first: the sum over cadences [i, j) is sums[j] - sums[i]
    cadence_days: float
    gap_edges: FloatArray  # (n, 2): the last time before each gap and the first after it

    @classmethod
    def of(cls, time_btjd: npt.ArrayLike, flux: npt.ArrayLike) -> Series | None:
        """Return the series without missing values, or None when too little is left to search (under 3 points)."""
        time = np.asarray(time_btjd, dtype=float).reshape(-1)
        values = np.asarray(flux, dtype=float).reshape(-1)
        if time.size != values.size:
            raise ValueError(f"time and flux differ in length ({time.size} and {values.size}).")
        keep = np.isfinite(time) & np.isfinite(values)
        time, values = time[keep], values[keep]
        if time.size < 3:
            return None
        order = np.argsort(time, kind="stable")
        time, values = time[order], values[order]
        steps = np.diff(time)
        positive = steps[steps > 0]
        if positive.size == 0:
            return None
        cadence = float(np.median(positive))
        gaps = np.flatnonzero(steps > GAP_CADENCES * cadence)
        edges = np.column_stack((time[gaps], time[gaps + 1])) if gaps.size else np.empty((0, 2))
        values = values - np.median(values)
        return cls(time, values, np.concatenate(([0.0], np.cumsum(values))), cadence, edges)


@dataclass(frozen=True)
class _Boxes:
    """Box means of one duration, centred on every cadence, and their significance."""

    duration_days: float
    mean: FloatArray
    count: npt.NDArray[np.intp]
    snr: FloatArray  # NaN where the box holds too few cadences


def box_means(series: Series, duration_days: float) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Return the mean flux and the cadence count of a box of ``duration_days`` centred on each cadence."""
    half = duration_days / 2.0
    low = np.searchsorted(series.time, series.time - half, side="left")
    high = np.searchsorted(series.time, series.time + half, side="right")
    count = high - low
    return (series.sums[high] - series.sums[low]) / np.maximum(count, 1), count


def _boxes(series: Series, duration_days: float) -> _Boxes | None:
    mean, count = box_means(series, duration_days)
    expected = duration_days / series.cadence_days
    enough = count >= max(2.0, MIN_COVERAGE * expected)
    if np.count_nonzero(enough) < 3:
        return None
    weighed = mean * np.sqrt(np.minimum(count / expected, 1.0))
    sampled = weighed[enough]
    step = min(int(NOISE_STEP_FRACTION * expected), sampled.size // NOISE_MIN_SAMPLES)
    sampled = sampled[:: max(1, step)]
    noise = MAD_TO_SIGMA * float(np.median(np.abs(sampled - np.median(sampled))))
    if not noise > 0:
        return None
    snr = np.where(enough, weighed / noise, np.nan)
    return _Boxes(duration_days, mean, count, snr)


def find_events(
    time_btjd: npt.ArrayLike,
    flux: npt.ArrayLike,
    *,
    min_snr: float = DEFAULT_MIN_SNR,
    max_events: int = 10,
    kinds: Sequence[EventKind] = ("dip", "bump"),
    durations_hours: Sequence[float] = DURATIONS_HOURS,
) -> list[Event]:
    """Return the anomalous windows of a detrended relative light curve, strongest first (see the module doc)."""
    series = Series.of(time_btjd, flux)
    if series is None or max_events <= 0:
        return []
    span = series.time[-1] - series.time[0]
    boxes = [b for h in durations_hours if h / HOURS_PER_DAY <= span and (b := _boxes(series, h / HOURS_PER_DAY))]
    if not boxes:
        return []
    # One row per duration: the significance of the kinds asked for, -inf elsewhere (argmax needs no NaN copy).
    wanted = np.empty((len(boxes), series.time.size))
    for row, box in enumerate(boxes):
        wanted[row] = _wanted(box.snr, kinds)
    events: list[Event] = []
    while len(events) < max_events:
        row, column = divmod(int(np.argmax(wanted)), wanted.shape[1])
        strongest = wanted[row, column]
        if strongest == -np.inf or not strongest >= min_snr:
            break
        event = _event(series, boxes[row], column)
        events.append(event)
        _mask_overlapping(wanted, series.time, boxes, event)
    return events


def _wanted(snr: FloatArray, kinds: Sequence[EventKind]) -> FloatArray:
    """Return each box's strength as the kinds asked for see it (a dip is a negative mean), -inf for the others."""
    dips, bumps = snr < 0, snr > 0
    keep = (dips & ("dip" in kinds)) | (bumps & ("bump" in kinds))
    return np.where(keep, np.abs(snr), -np.inf)


def _event(series: Series, boxes: _Boxes, index: int) -> Event:
    t0 = float(series.time[index])
    half = boxes.duration_days / 2.0
    start, end = t0 - half, t0 + half
    mean = float(boxes.mean[index])
    return Event(
        t0_btjd=t0,
        start_btjd=start,
        end_btjd=end,
        duration_hours=boxes.duration_days * HOURS_PER_DAY,
        kind="dip" if mean < 0 else "bump",
        depth_ppm=abs(mean) * 1e6,
        snr=float(abs(boxes.snr[index])),
        n_points=int(boxes.count[index]),
        near_gap=_near_gap(series, start, end),
    )


def _near_gap(series: Series, start: float, end: float) -> bool:
    """Return whether the window, widened by half its length, reaches the data's ends or a long enough gap.

    A gap counts when it is at least `GAP_FRACTION` of the window: a momentum dump's few missing cadences do not
    count against a day-long event.
    """
    margin = (end - start) / 2.0
    if start - margin <= series.time[0] or end + margin >= series.time[-1]:
        return True
    edges = series.gap_edges
    long_enough = edges[:, 1] - edges[:, 0] >= GAP_FRACTION * (end - start)
    overlaps = (edges[:, 1] >= start - margin) & (edges[:, 0] <= end + margin)
    return bool(np.any(long_enough & overlaps))


def _mask_overlapping(wanted: FloatArray, time: FloatArray, boxes: list[_Boxes], event: Event) -> None:
    """Mask every box, of any duration, that overlaps the event's widened window: one event is found once."""
    event_days = event.duration_hours / HOURS_PER_DAY
    for row, box in enumerate(boxes):
        reach = (event_days + box.duration_days) / 2.0 + MASK_WIDENING * event_days
        low = np.searchsorted(time, event.t0_btjd - reach, side="left")
        high = np.searchsorted(time, event.t0_btjd + reach, side="right")
        wanted[row, low:high] = -np.inf
