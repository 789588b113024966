"""Does a TCE's own signal repeat? Each transit its ephemeris predicts, measured in the light curve. Pure functions.

For every transit the period and epoch put inside the light curve's time span (gaps included), the mean of the
detrended flux over the transit's duration, centred on the predicted time, is its depth; its uncertainty is the
scatter of box means of that duration across the whole light curve (the scaled MAD, as for events: red noise
counts). A transit is observed when data cover at least half of its window, and shows signal when its dip is
`SIGNAL_SNR` sigma or more. A TCE whose signal shows in only one transit is a single event.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.science.events import HOURS_PER_DAY, MAD_TO_SIGMA, Series, box_means

# A transit shows signal at this many sigma. A real TCE at the pipeline's threshold (MES 7.1) with six or more
# transits has about 7.1 / √6 ≈ 2.9 sigma per transit, so per-transit evidence is judged well below 7.1.
SIGNAL_SNR = 3.0
MIN_OBSERVED_COVERAGE = 0.5
# No ephemeris predicts more transits than this in one light curve (a 0.1-day period over a 100-day span does not).
MAX_TRANSITS = 1000


@dataclass(frozen=True)
class Ephemeris:
    """A TCE's period, epoch and duration, as DV reports them (TPERIOD, TEPOCH, TDUR)."""

    period_days: float
    epoch_btjd: float
    duration_hours: float


@dataclass(frozen=True)
class PredictedTransit:
    """One predicted transit, measured: depth (ppm, positive for a dip), its uncertainty, SNR, coverage."""

    t_btjd: float
    depth_ppm: float | None
    depth_err_ppm: float | None
    snr: float | None
    model_depth_ppm: float | None
    coverage: float
    n_points: int
    observed: bool
    has_signal: bool


@dataclass(frozen=True)
class TransitCheck:
    """Every predicted transit and the summary: how many were predicted, observed, and showed the dip."""

    transits: list[PredictedTransit]
    n_predicted: int
    n_observed: int
    n_with_signal: int
    single_event: bool


def predicted_times(ephemeris: Ephemeris, start_btjd: float, end_btjd: float) -> list[float]:
    """Return the transit times the ephemeris puts within [start, end] (only the epoch when it has no period)."""
    period, epoch = ephemeris.period_days, ephemeris.epoch_btjd
    if not math.isfinite(epoch):
        return []
    if not (math.isfinite(period) and period > 0):
        return [epoch] if start_btjd <= epoch <= end_btjd else []
    first = math.ceil((start_btjd - epoch) / period)
    last = math.floor((end_btjd - epoch) / period)
    return [epoch + n * period for n in range(first, min(last, first + MAX_TRANSITS - 1) + 1)]


def check_transits(
    time_btjd: npt.ArrayLike,
    flux: npt.ArrayLike,
    ephemeris: Ephemeris,
    model: npt.ArrayLike | None = None,
) -> TransitCheck:
    """Measure every transit ``ephemeris`` predicts in a detrended relative light curve (see the module doc).

    ``model`` (DV's MODEL_INIT, same length as ``time_btjd``) gives each transit's model depth when present.
    """
    series = Series.of(time_btjd, flux)
    duration_days = ephemeris.duration_hours / HOURS_PER_DAY
    if series is None or not (math.isfinite(duration_days) and duration_days > 0):
        return TransitCheck([], 0, 0, 0, False)
    times = predicted_times(ephemeris, float(series.time[0]), float(series.time[-1]))
    noise = _box_noise(series, duration_days)
    model_of = _model_depths(time_btjd, model, duration_days)
    transits = [_measure(series, t, duration_days, noise, model_of(t)) for t in times]
    observed = [t for t in transits if t.observed]
    with_signal = [t for t in observed if t.has_signal]
    return TransitCheck(transits, len(transits), len(observed), len(with_signal), len(with_signal) == 1)


def _box_noise(series: Series, duration_days: float) -> float | None:
    """Return the scatter of box means of ``duration_days`` over the light curve (scaled MAD), or None."""
    mean, count = box_means(series, duration_days)
    enough = count >= max(2.0, MIN_OBSERVED_COVERAGE * duration_days / series.cadence_days)
    if np.count_nonzero(enough) < 3:
        return None
    sampled = mean[enough]
    noise = MAD_TO_SIGMA * float(np.median(np.abs(sampled - np.median(sampled))))
    return noise if noise > 0 else None


def _measure(
    series: Series, t_btjd: float, duration_days: float, noise: float | None, model_depth_ppm: float | None
) -> PredictedTransit:
    half = duration_days / 2.0
    low = int(np.searchsorted(series.time, t_btjd - half, side="left"))
    high = int(np.searchsorted(series.time, t_btjd + half, side="right"))
    n_points = high - low
    coverage = min(1.0, n_points * series.cadence_days / duration_days)
    observed = coverage >= MIN_OBSERVED_COVERAGE
    if n_points == 0:
        return PredictedTransit(t_btjd, None, None, None, model_depth_ppm, 0.0, 0, False, False)
    depth = -float(np.mean(series.flux[low:high]))
    snr = depth / noise if noise else None
    return PredictedTransit(
        t_btjd=t_btjd,
        depth_ppm=depth * 1e6,
        depth_err_ppm=noise * 1e6 if noise else None,
        snr=snr,
        model_depth_ppm=model_depth_ppm,
        coverage=coverage,
        n_points=n_points,
        observed=observed,
        has_signal=observed and snr is not None and snr >= SIGNAL_SNR,
    )


def _model_depths(
    time_btjd: npt.ArrayLike, model: npt.ArrayLike | None, duration_days: float
) -> Callable[[float], float | None]:
    """Return what gives the model's depth (ppm) at a transit time, measured as the flux is: the window's mean."""
    if model is None:
        return lambda t: None
    time = np.asarray(time_btjd, dtype=float).reshape(-1)
    values = np.asarray(model, dtype=float).reshape(-1)
    keep = np.isfinite(time) & np.isfinite(values)
    time, values = time[keep], values[keep]
    order = np.argsort(time, kind="stable")
    time, values = time[order], values[order]
    baseline = float(np.median(values)) if values.size else 0.0

    def depth(t_btjd: float) -> float | None:
        low = np.searchsorted(time, t_btjd - duration_days / 2.0, side="left")
        high = np.searchsorted(time, t_btjd + duration_days / 2.0, side="right")
        if high <= low:
            return None
        return (baseline - float(np.mean(values[low:high]))) * 1e6

    return depth
