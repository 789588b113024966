"""Pixel-level diagnosis (science.diagnosis): a confusion matrix on random synthetic scenes, and its speed.

(1) Confusion matrix. Every scene: a 30×30 cutout at a 30-min cadence over three days, a 100 e-/s sky, Gaussian
    stars (PSF sigma 0.8-1.2 px) with shot-like Gaussian noise, the target (5,000-50,000 e-/s) at the centre with a
    2-px disk aperture, 4-10 field stars at least 5 px from it, and an event window of 2-8 h somewhere in the
    middle day. One cause per scene, drawn at random within these ranges:
      on_target        the target dims by a depth that makes its in-window SNR 7.1-100, log-uniform (the target's
                       own shot noise over the window's frames; the diagnosis sees more noise than that: the
                       reference's, the sky's, the aperture's or the 5×5 box's). 7.1 is the event search's
                       default threshold: the service diagnoses windows the search flagged, so these are the
                       events it is asked about;
      (weak on_target) the same at SNR 3-7.1, log-uniform: dips the search would not flag. Diagnosed and shown
                       on a row of their own and in the recall by SNR, outside the class's recall and accuracy;
                       most are meant to come out inconclusive;
      off_target       a neighbour 1.5-6 px away (3,000-30,000 e-/s) dims by 1-30 %, log-uniform;
      moving_object    a 200-5,000 e-/s point source at 0.5-3 px/h, any direction, passing 0-2 px from the
                       target at a random time inside the window;
      scattered_light  the sky rises and falls smoothly (half a sine) over the window by 0.1-10 e-/s per pixel;
      systematics      1-3 frames of the window flagged (momentum dump, coarse point or manual exclude) and the
                       target 0.5-10 % fainter in those frames only;
      inconclusive     nothing at all.
    Printed: the matrix (counts and row %), per-class recall, the costly mistake (moving_object or off_target
    called on_target), the track's accuracy on the moving scenes (fitted speed within 15 % and closest-approach
    time within 0.1 d of the truth; no track counts as a miss), and on_target recall by injected SNR.
    Tuning used --seed 1 only (seeds 2 and 3 as checks); the reported numbers are from the default seed, run once
    at the end, not looked at while tuning.

(2) Speed: one diagnosis of a one-day window on a 50×50 cutout at 30 min (the window and its reference, 4.5 days
    of frames, plus a day either side), median of repeats. Target: <= 200 ms.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.science import diagnosis  # noqa: E402

CLASSES = ("on_target", "off_target", "moving_object", "scattered_light", "systematics", "inconclusive")
CADENCE_DAYS = 0.5 / 24
EXPOSURE_S = 1800.0
SKY = 100.0
DEFAULT_SEED = 20261205
DETECTION_SNR = 7.1  # the event search's default threshold (service.science.events)
SNR_BINS = ((3, 5), (5, DETECTION_SNR), (DETECTION_SNR, 10), (10, 20), (20, 100))
SPEED_TOLERANCE = 0.15
TIME_TOLERANCE_DAYS = 0.1
WEAK = "weak on_target"


def star(shape, x, y, flux, sigma_px):
    rows, columns = np.indices(shape)
    profile = np.exp(-((columns - x) ** 2 + (rows - y) ** 2) / (2 * sigma_px**2))
    return flux * profile / profile.sum()


class Scene:
    def __init__(self, rng, shape=(30, 30), days=3.0, duration_days=None):
        self.rng, self.shape = rng, shape
        self.time = np.arange(0.0, days, CADENCE_DAYS)
        self.quality = np.zeros(self.time.size, dtype=np.int64)
        self.psf = rng.uniform(0.8, 1.2)
        self.target = ((shape[1] - 1) / 2, (shape[0] - 1) / 2)
        self.target_flux = 10 ** rng.uniform(math.log10(5000), math.log10(50000))
        field = star(shape, *self.target, self.target_flux, self.psf)
        for _ in range(rng.integers(4, 11)):
            x, y = rng.uniform(2, shape[1] - 2), rng.uniform(2, shape[0] - 2)
            if math.hypot(x - self.target[0], y - self.target[1]) > 5:
                field += star(shape, x, y, 10 ** rng.uniform(3, 4.3), self.psf)
        self.flux = np.repeat((SKY + field)[None], self.time.size, axis=0)
        rows, columns = np.indices(shape)
        self.aperture = np.hypot(columns - self.target[0], rows - self.target[1]) <= 2.0
        duration = duration_days if duration_days is not None else rng.uniform(2, 8) / 24
        self.start = rng.uniform(days / 2 - 0.5, days / 2 + 0.5 - duration)
        self.end = self.start + duration
        self.window = (self.time >= self.start) & (self.time <= self.end)

    def series(self):
        noise = np.sqrt(np.clip(self.flux, 1.0, None) / EXPOSURE_S)
        observed = self.flux + self.rng.normal(0.0, 1.0, self.flux.shape) * noise
        return diagnosis.PixelSeries(observed, self.time, self.quality, self.target, self.aperture)


def dip(scene, low_snr, high_snr):
    """Dim the target in the window by a depth of in-window SNR between the two, log-uniform; return the SNR."""
    n = int(scene.window.sum())
    noise = math.sqrt(scene.target_flux * EXPOSURE_S) / EXPOSURE_S / math.sqrt(max(n, 1))
    snr = 10 ** scene.rng.uniform(math.log10(low_snr), math.log10(high_snr))
    scene.flux[scene.window] -= snr * noise * star(scene.shape, *scene.target, 1.0, scene.psf)
    return {"snr": snr}


def on_target(scene):
    return dip(scene, DETECTION_SNR, 100)


def weak_on_target(scene):
    return dip(scene, 3, DETECTION_SNR)


def off_target(scene):
    distance, angle = scene.rng.uniform(1.5, 6), scene.rng.uniform(0, 2 * math.pi)
    x, y = scene.target[0] + distance * math.cos(angle), scene.target[1] + distance * math.sin(angle)
    neighbour = star(scene.shape, x, y, 10 ** scene.rng.uniform(math.log10(3000), math.log10(30000)), scene.psf)
    scene.flux += neighbour[None]
    scene.flux[scene.window] -= 10 ** scene.rng.uniform(-2, math.log10(0.3)) * neighbour


def moving_object(scene):
    speed, angle = scene.rng.uniform(0.5, 3.0), scene.rng.uniform(0, 2 * math.pi)
    direction = np.array([math.sin(angle), math.cos(angle)])
    across = np.array([direction[1], -direction[0]]) * scene.rng.uniform(0, 2)
    t_closest, flux = scene.rng.uniform(scene.start, scene.end), 10 ** scene.rng.uniform(2.3, 3.7)
    for k, t in enumerate(scene.time):
        x, y = np.array(scene.target) + across + direction * speed * 24 * (t - t_closest)
        if -5 < x < scene.shape[1] + 5 and -5 < y < scene.shape[0] + 5:
            scene.flux[k] += star(scene.shape, x, y, flux, scene.psf)
    return {"speed_px_per_hour": speed, "closest_approach_btjd": t_closest}


def scattered_light(scene):
    phase = (scene.time[scene.window] - scene.start) / (scene.end - scene.start)
    scene.flux[scene.window] += (10 ** scene.rng.uniform(-1, 1) * np.sin(np.pi * phase))[:, None, None]


def systematics(scene):
    inside = np.flatnonzero(scene.window)
    flagged = scene.rng.choice(inside, size=min(inside.size, int(scene.rng.integers(1, 4))), replace=False)
    scene.quality[flagged] = scene.rng.choice([32, 4, 128], size=flagged.size)
    dip = 10 ** scene.rng.uniform(-2.3, -1) * star(scene.shape, *scene.target, scene.target_flux, scene.psf)
    scene.flux[flagged] -= dip


def inconclusive(scene):
    pass


CAUSES = {
    "on_target": on_target,
    "off_target": off_target,
    "moving_object": moving_object,
    "scattered_light": scattered_light,
    "systematics": systematics,
    "inconclusive": inconclusive,
    WEAK: weak_on_target,
}


def confusion(seed, per_class):
    """Diagnose every scene; return the counts (rows: CLASSES then the weak dips), SNR/recovered and track hits."""
    rows = (*CLASSES, WEAK)
    counts = np.zeros((len(rows), len(CLASSES)), dtype=int)
    on_target_snr = []  # (injected SNR, called on_target) of the on_target scenes, weak ones included
    track_hits = []  # (speed within tolerance, closest-approach time within tolerance) of the moving scenes
    for i, truth in enumerate(rows):
        for k in range(per_class):
            scene = Scene(np.random.default_rng([seed, i, k]))
            injected = CAUSES[truth](scene) or {}
            result = diagnosis.diagnose(scene.series(), scene.start, scene.end)
            verdict = result.judgement.verdict
            counts[i, CLASSES.index(verdict)] += 1
            if "snr" in injected:
                on_target_snr.append((injected["snr"], verdict == "on_target"))
            if "speed_px_per_hour" in injected:
                track = result.track
                speed = (
                    track is not None
                    and abs(track.speed_px_per_hour / injected["speed_px_per_hour"] - 1) <= SPEED_TOLERANCE
                )
                when = (
                    track is not None
                    and abs(track.closest_approach_btjd - injected["closest_approach_btjd"]) <= TIME_TOLERANCE_DAYS
                )
                track_hits.append((speed, when))
    return counts, np.asarray(on_target_snr), np.asarray(track_hits)


def report(counts, on_target_snr, track_hits):
    rows = (*CLASSES, WEAK)
    width = max(len(c) for c in rows)
    print(" " * width + " " + " ".join(f"{c[:9]:>9}" for c in CLASSES) + "   recall")
    for i, truth in enumerate(rows):
        total = counts[i].sum()
        cells = " ".join(f"{n:>4d} {n / total:4.0%}" for n in counts[i])
        recall = counts[i, CLASSES.index("on_target") if truth == WEAK else i] / total
        note = "  (not in the accuracy)" if truth == WEAK else ""
        print(f"{truth:>{width}} {cells}   {recall:6.1%}{note}")
    main = counts[: len(CLASSES)]
    recalls = np.diag(main) / main.sum(axis=1)
    print("recall: " + ", ".join(f"{c} {r:.1%}" for c, r in zip(CLASSES, recalls, strict=True)))
    print(f"accuracy {np.trace(main) / main.sum():.1%} (the six classes; worst class {recalls.min():.1%})")
    on = CLASSES.index("on_target")
    for truth in ("moving_object", "off_target"):
        i = CLASSES.index(truth)
        share = main[i, on] / main[i].sum()
        print(f"costly mistake: {truth} called on_target {main[i, on]} of {main[i].sum()} ({share:.1%})")
    costly = main[CLASSES.index("moving_object"), on] + main[CLASSES.index("off_target"), on]
    both = main[CLASSES.index("moving_object")].sum() + main[CLASSES.index("off_target")].sum()
    print(f"costly mistake, both: {costly} of {both} ({costly / both:.1%}; target <= 2 %)")
    speed, when = track_hits[:, 0], track_hits[:, 1]
    print(
        f"moving tracks: speed within {SPEED_TOLERANCE:.0%} {speed.mean():.1%}, closest approach within "
        f"{TIME_TOLERANCE_DAYS} d {when.mean():.1%}, both {(speed & when).mean():.1%} of {track_hits.shape[0]}"
    )
    for low, high in SNR_BINS:
        inside = (on_target_snr[:, 0] >= low) & (on_target_snr[:, 0] < high)
        if inside.any():
            weak = "  (weak)" if high <= DETECTION_SNR else ""
            recall = on_target_snr[inside, 1].mean()
            print(f"on_target recall at injected SNR {low}-{high}: {recall:4.0%} of {int(inside.sum())}{weak}")


def timing(seed, repeats):
    scene = Scene(np.random.default_rng(seed), shape=(50, 50), days=6.5, duration_days=1.0)
    scene.start, scene.end = 2.75, 3.75
    series = scene.series()
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        diagnosis.diagnose(series, scene.start, scene.end)
        seconds.append(time.perf_counter() - began)
    return float(np.median(seconds)), series.flux.shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    began = time.perf_counter()
    counts, on_target_snr, track_hits = confusion(args.seed, args.per_class)
    elapsed = time.perf_counter() - began
    print(f"seed {args.seed}, {args.per_class} scenes per class ({elapsed:.0f} s); rows: truth, columns: verdict")
    report(counts, on_target_snr, track_hits)
    median_s, shape = timing(args.seed, args.repeats)
    print(f"one diagnosis, one-day window, cube {shape}: {median_s * 1000:.0f} ms (median of {args.repeats})")


if __name__ == "__main__":
    main()
