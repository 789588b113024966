"""Single events: injection-recovery of find_events on synthetic detrended light curves, and its speed.

(1) Injection-recovery, seeded and random. Every light curve is a TESS-like sector: 2-min cadence over 27 days,
    zero-mean relative flux (detrended-like, as DV's LC_DETREND), with
      - white noise, sigma log-uniform in 200-5000 ppm per cadence;
      - red noise, a stationary AR(1) (Ornstein-Uhlenbeck) process: timescale log-uniform in 0.5-12 h, amplitude
        per cadence log-uniform in 2-50 % of the white sigma (so it dominates long boxes in many curves);
      - the mid-sector orbit gap (0.7-1.3 days, no rows at all), a few random short gaps (20 min to 6 h of NaN
        flux) and NaN cadences (0.5-4 % at random, plus short runs of 2-15).
    One set of curves gets ONE injected event each: dip or bump (even odds) at a random time, duration log-uniform
    in 0.5-24 h, box or trapezoid (ingress and egress each 5-30 % of the duration), its window inside the data
    span and at least 75 % covered by finite cadences. The other set is the same noise with nothing injected.

    Injected SNR, the x axis of the recovery table:
        SNR_inj = <s> / sigma_D
    where <s> is the injected signal's mean over the finite cadences of its window [t0 - D/2, t0 + D/2] (the depth
    for a box, less for a trapezoid) and sigma_D is the true scatter of box means of the same duration D in the
    noise-only realisation of that very curve: the standard deviation of the means of every D-long run of
    cadences that is at least 80 % finite. White and red noise both count, as they do for any matched filter. The
    depth is chosen so that SNR_inj is log-uniform in 3-50.

    Recovered: find_events (defaults: min_snr 7.1, both kinds) returns an event of the injected kind whose t0 lies
    within half the injected duration of the injected centre. Every other event is a false event. The confusion
    matrix classifies each injection by the event found within half a duration of it (any kind), or none.

    Seeds: the detector was tuned with --seed 1 only; the default seed (20250611) is the one reported, and was
    not looked at while tuning. Each curve draws from its own generator, seeded by (seed, set, index), so the
    numbers do not depend on --workers.

(2) Speed, side by side in one run (repeats interleaved, so both see the same load): find_events and
    check_transits on the same 20,000-point light curve (median of the repeats; find_events target <= 20 ms), and a
    naive reference (a Python loop over every window of every duration) against find_events on a smaller curve.

Targets: >= 95 % recovered at SNR_inj >= 10; <= 0.05 false events per noise-only curve.

Run: .venv/bin/python benchmarks/bench_events.py [--seed 20250611] [--curves 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.science.events import DURATIONS_HOURS, MAD_TO_SIGMA, Event, find_events  # noqa: E402
from service.science.transits import Ephemeris, check_transits  # noqa: E402

DEFAULT_SEED = 20250611
TUNING_SEED = 1
CADENCE_DAYS = 2.0 / 1440.0
SECTOR_DAYS = 27.0
HOURS = 1.0 / 24.0
SNR_RANGE = (3.0, 50.0)
DURATION_RANGE_HOURS = (0.5, 24.0)
MIN_INJECTED_COVERAGE = 0.75
SCATTER_COVERAGE = 0.8
SNR_BINS = ((3, 5), (5, 7), (7, 10), (10, 15), (15, 25), (25, float("inf")))
TARGET_RECOVERY, TARGET_FALSE_PER_CURVE, TARGET_MS = 0.95, 0.05, 20.0
# Thresholds below the default, for the noise-only curves: the tail of the SNR under pure noise, to compare with a
# Gaussian's (a calibrated SNR gives few events at 5, none at 7.1).
CALIBRATION_SNRS = (4.0, 5.0, 6.0)
INJECTED, NOISE_ONLY = 0, 1


# ---------------------------------------------------------------- the synthetic light curves


@dataclass(frozen=True)
class Curve:
    """A simulated sector: the rows that exist (orbit gap removed) and their flux, NaN where missing."""

    time: np.ndarray
    flux: np.ndarray
    finite_on_grid: np.ndarray  # the same, on the regular grid (orbit gap included), for box-mean scatter
    flux_on_grid: np.ndarray
    white_ppm: float
    red_ppm: float
    red_tau_hours: float


def ar1_noise(rng: np.random.Generator, n: int, tau_cadences: float) -> np.ndarray:
    """Unit-variance AR(1) noise, made in one FFT: white noise through the AR(1) filter (circular, n >> tau)."""
    phi = np.exp(-1.0 / tau_cadences)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    omega = 2 * np.pi * np.fft.rfftfreq(n)
    return np.fft.irfft(spectrum * np.sqrt(1 - phi**2) / (1 - phi * np.exp(-1j * omega)), n)


def simulate_noise(rng: np.random.Generator, n: int = round(SECTOR_DAYS / CADENCE_DAYS)) -> Curve:
    """One sector of detrended-like noise with its gaps and missing cadences (see the module doc)."""
    start = rng.uniform(1325.0, 3000.0)
    grid = start + np.arange(n) * CADENCE_DAYS
    white = np.exp(rng.uniform(np.log(200e-6), np.log(5000e-6)))
    red = white * np.exp(rng.uniform(np.log(0.02), np.log(0.5)))
    tau_hours = np.exp(rng.uniform(np.log(0.5), np.log(12.0)))
    flux = white * rng.standard_normal(n) + red * ar1_noise(rng, n, tau_hours * HOURS / CADENCE_DAYS)
    finite = np.ones(n, dtype=bool)
    span = n * CADENCE_DAYS
    # The orbit gap: no rows at all, as in a real sector.
    gap_days = rng.uniform(0.7, 1.3)
    gap_start = start + span / 2 + rng.uniform(-1.0, 1.0) - gap_days / 2
    in_orbit_gap = (grid >= gap_start) & (grid < gap_start + gap_days)
    finite &= ~in_orbit_gap
    for _ in range(rng.poisson(3)):  # short gaps: rows with NaN flux
        length = round(np.exp(rng.uniform(np.log(20 * 60), np.log(6 * 3600))) / 120)
        first = rng.integers(0, n)
        finite[first : first + length] = False
    finite[rng.random(n) < rng.uniform(0.005, 0.04)] = False
    for _ in range(rng.poisson(8)):
        first = rng.integers(0, n)
        finite[first : first + rng.integers(2, 16)] = False
    flux = np.where(finite, flux - flux[finite].mean(), np.nan)
    rows = ~in_orbit_gap
    return Curve(grid[rows], flux[rows], finite, flux, white * 1e6, red * 1e6, tau_hours)


def box_scatter(curve: Curve, duration_days: float) -> float:
    """The true scatter of box means of ``duration_days`` in this noise: std over runs >= 80 % finite."""
    width = max(1, round(duration_days / CADENCE_DAYS))
    values = np.where(curve.finite_on_grid, curve.flux_on_grid, 0.0)
    sums = np.concatenate(([0.0], np.cumsum(values)))
    counts = np.concatenate(([0], np.cumsum(curve.finite_on_grid)))
    total, count = sums[width:] - sums[:-width], counts[width:] - counts[:-width]
    enough = count >= SCATTER_COVERAGE * width
    return float(np.std(total[enough] / count[enough]))


@dataclass(frozen=True)
class Injection:
    t0_btjd: float
    duration_hours: float
    kind: str
    shape: str
    depth_ppm: float
    snr: float
    by_gap: bool  # the window widened by D/2 on each side is under 90 % finite, or reaches an end of the data


def unit_shape(time: np.ndarray, t0: float, duration_days: float, ingress_fraction: float) -> np.ndarray:
    """1 inside the event, 0 outside; a trapezoid's linear ingress and egress when ``ingress_fraction`` > 0."""
    inside = duration_days / 2 - np.abs(time - t0)
    if ingress_fraction <= 0:
        return (inside >= 0).astype(float)
    return np.clip(inside / (ingress_fraction * duration_days), 0.0, 1.0)


def inject(rng: np.random.Generator, curve: Curve) -> tuple[np.ndarray, Injection]:
    """Add one event to ``curve``'s flux; return the new flux and what was injected (SNR as the module doc says)."""
    duration_hours = float(np.exp(rng.uniform(*np.log(DURATION_RANGE_HOURS))))
    duration = duration_hours * HOURS
    kind = "dip" if rng.random() < 0.5 else "bump"
    ingress = rng.uniform(0.05, 0.3) if rng.random() < 0.5 else 0.0
    target_snr = float(np.exp(rng.uniform(*np.log(SNR_RANGE))))
    finite = np.isfinite(curve.flux)
    for _ in range(1000):
        t0 = rng.uniform(curve.time[0] + duration / 2, curve.time[-1] - duration / 2)
        window = np.abs(curve.time - t0) <= duration / 2
        if np.count_nonzero(window & finite) >= MIN_INJECTED_COVERAGE * duration / CADENCE_DAYS:
            break
    shape = unit_shape(curve.time, t0, duration, ingress)
    mean_shape = float(shape[window & finite].mean())
    scatter = box_scatter(curve, duration)
    depth = target_snr * scatter / mean_shape
    sign = -1.0 if kind == "dip" else 1.0
    flux = curve.flux + sign * depth * shape
    snr = depth * mean_shape / scatter
    widened = np.abs(curve.time - t0) <= duration
    by_gap = (
        np.count_nonzero(widened & finite) < 0.9 * 2 * duration / CADENCE_DAYS
        or t0 - duration < curve.time[0]
        or t0 + duration > curve.time[-1]
    )
    shape_name = "trapezoid" if ingress else "box"
    return flux, Injection(t0, duration_hours, kind, shape_name, depth * 1e6, snr, bool(by_gap))


# ---------------------------------------------------------------- one trial


@dataclass(frozen=True)
class Trial:
    """What find_events made of one curve."""

    injection: Injection | None
    recovered: bool
    kind_at_injection: str  # "dip", "bump" or "none"
    false_events: list[tuple[float, bool, float]]  # (duration_hours, near_gap, snr) of each unmatched event
    low_threshold_snrs: list[float]  # noise-only curves: every event find_events reports at min_snr 4
    red_over_white_at_1h: float


def matches(event: Event, injection: Injection) -> bool:
    return abs(event.t0_btjd - injection.t0_btjd) <= injection.duration_hours * HOURS / 2


def run_trial(task: tuple[int, int, int]) -> Trial:
    seed, which, index = task
    rng = np.random.default_rng([seed, which, index])
    curve = simulate_noise(rng)
    red_ratio = curve.red_ppm / (curve.white_ppm / np.sqrt(30))
    if which == NOISE_ONLY:
        events = find_events(curve.time, curve.flux)
        low = [e.snr for e in find_events(curve.time, curve.flux, min_snr=CALIBRATION_SNRS[0], max_events=1000)]
        return Trial(None, False, "none", [(e.duration_hours, e.near_gap, e.snr) for e in events], low, red_ratio)
    flux, injection = inject(rng, curve)
    events = find_events(curve.time, flux)
    at_injection = [e for e in events if matches(e, injection)]
    recovered = any(e.kind == injection.kind for e in at_injection)
    kind_found = at_injection[0].kind if at_injection else "none"
    false = [(e.duration_hours, e.near_gap, e.snr) for e in events if not (matches(e, injection) and recovered)]
    return Trial(injection, recovered, kind_found, false, [], red_ratio)


# ---------------------------------------------------------------- the report


def print_recovery(trials: list[Trial]) -> None:
    injected = [t for t in trials if t.injection is not None]
    print(f"Recovery by injected SNR ({len(injected)} curves, one event each; min_snr 7.1):")
    print(f"  {'SNR_inj':>10}  {'curves':>6}  {'recovered':>9}  {'rate':>6}")
    for low, high in SNR_BINS:
        chosen = [t for t in injected if t.injection and low <= t.injection.snr < high]
        found = sum(t.recovered for t in chosen)
        label = f"{low}-{high}" if high != float("inf") else f"{low}+"
        rate = f"{found / len(chosen):6.1%}" if chosen else "     -"
        print(f"  {label:>10}  {len(chosen):6d}  {found:9d}  {rate}")
    strong = [t for t in injected if t.injection and t.injection.snr >= 10]
    rate = sum(t.recovered for t in strong) / max(1, len(strong))
    verdict = "met" if rate >= TARGET_RECOVERY else "NOT met"
    print(f"  SNR_inj >= 10: {rate:.1%} of {len(strong)} recovered (target >= {TARGET_RECOVERY:.0%}: {verdict})")
    print("  SNR_inj >= 10 by duration and shape:", end="")
    for label, keep in (
        ("0.5-2 h", lambda i: i.duration_hours < 2),
        ("2-8 h", lambda i: 2 <= i.duration_hours < 8),
        ("8-24 h", lambda i: i.duration_hours >= 8),
        ("box", lambda i: i.shape == "box"),
        ("trapezoid", lambda i: i.shape == "trapezoid"),
        ("by a gap", lambda i: i.by_gap),
    ):
        chosen = [t for t in strong if t.injection and keep(t.injection)]
        print(f"  {label} {sum(t.recovered for t in chosen) / max(1, len(chosen)):.1%} ({len(chosen)})", end="")
    print()


def print_false(trials: list[Trial]) -> None:
    noise = [t for t in trials if t.injection is None]
    injected = [t for t in trials if t.injection is not None]
    print()
    for label, chosen in (("noise-only", noise), ("injected", injected)):
        false = [f for t in chosen for f in t.false_events]
        per_curve = len(false) / max(1, len(chosen))
        curves_hit = sum(bool(t.false_events) for t in chosen)
        target = ""
        if label == "noise-only":
            verdict = "met" if per_curve <= TARGET_FALSE_PER_CURVE else "NOT met"
            target = f"  (target <= {TARGET_FALSE_PER_CURVE}: {verdict})"
        print(
            f"False events in {len(chosen)} {label} curves at min_snr 7.1: {len(false)} "
            f"= {per_curve:.3f} per curve, {curves_hit} curves with any{target}"
        )
        if false:
            near = sum(near_gap for _, near_gap, _ in false)
            durations = Counter(f"{d:g} h" for d, _, _ in false)
            print(f"  near a gap or an end: {near}; by duration: {dict(sorted(durations.items()))}")
            snrs = [snr for *_, snr in false]
            print(f"  their SNR: median {statistics.median(snrs):.1f}, max {max(snrs):.1f}")
    rates = ", ".join(
        f">= {snr:g}: {sum(s >= snr for t in noise for s in t.low_threshold_snrs) / max(1, len(noise)):.3f}"
        for snr in CALIBRATION_SNRS
    )
    print(f"  noise-only curves, events per curve at lower thresholds (the SNR's tail under noise): {rates}")


def print_confusion(trials: list[Trial]) -> None:
    print()
    for label, low in (("all injections", 0.0), ("SNR_inj >= 10", 10.0)):
        chosen = [t for t in trials if t.injection and t.injection.snr >= low]
        print(f"Confusion, {label}: injected kind vs the event found within D/2 of it")
        print(f"  {'':14}{'found dip':>10}{'found bump':>11}{'none':>7}")
        for kind in ("dip", "bump"):
            counts = Counter(t.kind_at_injection for t in chosen if t.injection and t.injection.kind == kind)
            print(f"  injected {kind:5}{counts['dip']:10d}{counts['bump']:11d}{counts['none']:7d}")


def run_injection_recovery(seed: int, curves: int, workers: int) -> None:
    tasks = [(seed, which, i) for which in (INJECTED, NOISE_ONLY) for i in range(curves)]
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        trials = pool.map(run_trial, tasks, chunksize=20)
    seconds = time.perf_counter() - start
    note = " (the tuning seed: do not report)" if seed == TUNING_SEED else ""
    print(f"Injection-recovery: seed {seed}{note}; {curves} injected + {curves} noise-only curves of 27 d at 2 min")
    print(f"  ({seconds:.1f} s on {workers} worker processes)")
    ratios = [t.red_over_white_at_1h for t in trials]
    print(
        f"  red/white box noise at 1 h: median {np.median(ratios):.2f}, 90th percentile {np.percentile(ratios, 90):.2f}"
    )
    print()
    print_recovery(trials)
    print_false(trials)
    print_confusion(trials)


# ---------------------------------------------------------------- speed


def naive_strongest(time_btjd: np.ndarray, flux: np.ndarray) -> float:
    """The reference: a Python loop over every window of every duration; return the strongest |SNR|."""
    keep = np.isfinite(flux)
    time_btjd, values = list(time_btjd[keep]), flux[keep] - np.median(flux[keep])
    cadence = float(np.median(np.diff(time_btjd)))
    best = 0.0
    for hours in DURATIONS_HOURS:
        half = hours * HOURS / 2
        means = []
        for t in time_btjd:
            low, high = bisect.bisect_left(time_btjd, t - half), bisect.bisect_right(time_btjd, t + half)
            if high - low >= max(2.0, 0.5 * 2 * half / cadence):
                means.append(float(np.mean(values[low:high])))
        if len(means) < 3:
            continue
        array = np.array(means)
        noise = MAD_TO_SIGMA * float(np.median(np.abs(array - np.median(array))))
        best = max(best, float(np.max(np.abs(array))) / noise)
    return best


def timed_ms(work) -> float:
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) * 1000


def run_speed(seed: int, repeats: int = 21) -> None:
    rng = np.random.default_rng([seed, 2])
    full = simulate_noise(rng, 21_500)  # 20,000 rows once the orbit gap is cut
    curve = Curve(full.time[:20_000], full.flux[:20_000], full.finite_on_grid, full.flux_on_grid, 0, 0, 0)
    flux, _ = inject(rng, curve)
    ephemeris = Ephemeris(period_days=3.5, epoch_btjd=float(curve.time[0]) + 1.0, duration_hours=3.0)
    find_events(curve.time, flux)  # warm-up
    check_transits(curve.time, flux, ephemeris)
    events_ms, transits_ms = [], []
    for _ in range(repeats):
        events_ms.append(timed_ms(lambda: find_events(curve.time, flux)))
        transits_ms.append(timed_ms(lambda: check_transits(curve.time, flux, ephemeris)))
    print()
    print(f"Speed, {curve.time.size:,} rows ({np.isfinite(flux).sum():,} finite), median of {repeats} interleaved:")
    median = statistics.median(events_ms)
    print(
        f"  find_events     {median:7.2f} ms  (min {min(events_ms):.2f}, max {max(events_ms):.2f})  "
        f"{median / TARGET_MS:.2f}x the {TARGET_MS:.0f} ms target"
    )
    print(f"  check_transits  {statistics.median(transits_ms):7.2f} ms  (min {min(transits_ms):.2f})")

    small = slice(0, 3000)
    naive_ms, ours_ms = [], []
    for _ in range(3):
        naive_ms.append(timed_ms(lambda: naive_strongest(curve.time[small], flux[small])))
        ours_ms.append(timed_ms(lambda: find_events(curve.time[small], flux[small])))
    print(
        f"  naive loop over windows, 3,000 rows: {statistics.median(naive_ms):.0f} ms vs find_events "
        f"{statistics.median(ours_ms):.2f} ms: {statistics.median(naive_ms) / statistics.median(ours_ms):.0f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--curves", type=int, default=1000, help="injected curves, and as many noise-only ones")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    run_injection_recovery(args.seed, args.curves, args.workers)
    run_speed(args.seed)


if __name__ == "__main__":
    main()
