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
4. **Moving source** (`find_track`): over the frames around the window (in-event, reference and those between), each
   frame minus the static per-pixel median, 3×3-summed and divided by each pixel's robust scatter over time (median
   and scatter over at least `TRACK_BASELINE_DAYS` either side, so a slow mover does not raise them along its own
   path); the brightest residual per frame, where above `TRACK_MIN_SNR`, is a point. A straight line in (t, x) and
   (t, y) is fitted RANSAC-like (every pair of points, or a seeded sample of pairs, proposes a line; the one with
   most points within `TRACK_INLIER_PX` is refitted by least squares on them). No track (None) when too few points,
   too few of them on the line, a poor fit, or a source that does not move.
5. **Aperture depth** (`aperture_depth`): the background-subtracted aperture sum per frame; the depth is the
   reference mean minus the in-event mean over the reference mean, its error the reference frames' scatter of the
   sum times sqrt(1/n_in + 1/n_ref).
6. **Verdict** (`judge`): there is *evidence* of a change when the difference image's box SNR reaches
   `MIN_DIFFERENCE_SNR` (anywhere in the cutout), or, at the target alone, when the aperture depth's SNR reaches
   `MIN_APERTURE_SNR` and the difference centroid is not placed off the target. The two thresholds differ because the
   tests do: the difference peak is the best of every pixel of the cutout (hundreds of chances for noise, so 6
   sigma), while the aperture is one place fixed before looking, and the light curve already flagged the event (4
   sigma, either sign: Gaussian noise reaches it once in 16,000 windows; with the error estimated from the 12-30
   reference frames of a 2-8 h window, Student's t, once in 500-3,000). The first rule that holds, in this order: a
   track crossing the aperture near the window, or its background pixels while there is no evidence (the difference
   image leaves the mover's path out) → moving_object; flagged frames in the window and no evidence → systematics;
   the background departs in a ramp → scattered_light; a significant difference centred further than max(3 σ, 1 px)
   from the target → off_target; a significant difference on the target, or the aperture's significant depth with the
   centroid not off it → on_target; else inconclusive. Pure noise is *inconclusive*: without evidence there is
   nothing to place. An aperture that dims while the (weak) difference centroid sits off the target stays
   inconclusive: a neighbour's wing in the aperture is as likely as the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.science.pixels import (
    ARCSEC_PER_PX,
    CENTROID_ITERATIONS,
    MAD_TO_SIGMA,
    MIN_REFERENCE_FRAMES,
    BoolArray,
    FloatArray,
    Frames,
    IntArray,
    background_pixels,
    box,
    centroid,
    finite_series,
    sum3,
)

# The series, the frame choice and the track search are part of this module's interface (re-exported).
from service.science.pixels import PixelSeries as PixelSeries
from service.science.pixels import select_frames as select_frames
from service.science.tracks import TRACK_MIN_POINTS, Track
from service.science.tracks import find_track as find_track

Verdict = Literal["on_target", "off_target", "moving_object", "scattered_light", "systematics", "inconclusive"]
BACKGROUND_DEPARTURE_SIGMA = 5.0
RAMP_RESIDUAL_FRACTION = 0.25
RAMP_MIN_FRAMES = 4
MIN_DIFFERENCE_SNR = 6.0
MIN_APERTURE_SNR = 4.0
OFFSET_SIGMAS = 3.0
MIN_OFFSET_PX = 1.0


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
class ApertureDepth:
    """The relative drop of the background-subtracted aperture sum in the event, its error and SNR."""

    depth_ppm: float  # (reference - in-event) / reference: > 0 when the aperture dimmed in the event
    depth_err_ppm: float
    snr: float  # depth / its error, signed like the depth
    reference_flux_e_per_s: float  # the reference frames' mean aperture sum


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
    aperture: ApertureDepth | None = None


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
    aperture = aperture_depth(series, levels, frames)
    judgement = judge(difference, track, background, frames, aperture=aperture)
    return Diagnosis(frames, difference, track, background, judgement, aperture)


def aperture_depth(series: PixelSeries, levels: FloatArray, frames: Frames) -> ApertureDepth | None:
    """Return the aperture's depth in the event against its reference, or None when it cannot be measured.

    None without in-event frames, with too few reference frames, or a reference without flux or scatter. The
    error is the reference frames' scatter of the aperture sum times sqrt(1/n_in + 1/n_ref): the noise as the
    pixels show it (sky, neighbours' wings, jitter), not as a photon budget predicts it.
    """
    n_in, n_ref = int(frames.in_event.sum()), int(frames.reference.sum())
    if n_in == 0 or n_ref < MIN_REFERENCE_FRAMES or not series.aperture.any():
        return None
    sums = (series.flux[:, series.aperture] - levels[:, None]).sum(axis=1)
    reference = sums[frames.reference]
    level = float(reference.mean())
    if not level > 0:
        return None
    depth = (level - float(sums[frames.in_event].mean())) / level
    error = float(reference.std(ddof=1)) * math.sqrt(1.0 / n_in + 1.0 / n_ref) / level
    if not error > 0:
        return None
    snr = depth / error
    return ApertureDepth(depth * 1e6, error * 1e6, snr, level)


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
    sign = 1.0 if box(image, row, column, 1).sum() >= 0 else -1.0
    x, y = float(column), float(row)
    for _ in range(CENTROID_ITERATIONS):
        (x, y), (sx2, sy2, sxy), snr = centroid(sign * image, variance, x, y)
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


def _peak(image: FloatArray, variance: FloatArray) -> tuple[int, int]:
    """Return the (row, column) where the 3×3-summed image is most significant, either sign."""
    significance = np.abs(sum3(image)) / np.sqrt(sum3(np.where(np.isfinite(variance), variance, 0.0)) + 1e-30)
    significance = np.where(np.isfinite(sum3(variance)), significance, 0.0)
    row, column = np.unravel_index(int(np.argmax(significance)), image.shape)
    return int(row), int(column)


def judge(
    difference: DifferenceImage | None,
    track: Track | None,
    background: BackgroundChange,
    frames: Frames,
    *,
    aperture: ApertureDepth | None = None,
) -> Judgement:
    """Return the verdict: the first rule of the module's notes that holds."""
    significant = difference is not None and abs(difference.snr) >= MIN_DIFFERENCE_SNR
    on_aperture = _aperture_evidence(difference, aperture)
    evidence = significant or on_aperture
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
    if difference is not None and significant:
        return _placed(difference)
    if aperture is not None and on_aperture:
        return Judgement(
            "on_target",
            (1.0 - math.exp(-abs(aperture.snr) / MIN_APERTURE_SNR)) / 2,
            f"The target's aperture {'dims' if aperture.depth_ppm > 0 else 'brightens'} by "
            f"{abs(aperture.depth_ppm):.0f} ppm at SNR {abs(aperture.snr):.1f}, and the weaker difference image "
            "does not place the change elsewhere.",
        )
    return _inconclusive(difference)


def _offset_limit_px(difference: DifferenceImage) -> float:
    """Return how far the difference centroid may sit from the target and still be on it: max(3 σ, 1 px)."""
    return max(OFFSET_SIGMAS * difference.offset_sigma_px, MIN_OFFSET_PX)


def _aperture_evidence(difference: DifferenceImage | None, aperture: ApertureDepth | None) -> bool:
    """Return whether the aperture changed significantly with the difference centroid not placed off the target."""
    if aperture is None or difference is None or abs(aperture.snr) < MIN_APERTURE_SNR:
        return False
    return difference.offset_px <= _offset_limit_px(difference)


def _placed(difference: DifferenceImage) -> Judgement:
    """Return on_target or off_target for a significant difference image."""
    depth = 1.0 - math.exp(-abs(difference.snr) / MIN_DIFFERENCE_SNR)
    limit = _offset_limit_px(difference)
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
