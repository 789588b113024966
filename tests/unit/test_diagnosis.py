"""Pixel-level diagnosis of an event (science.diagnosis), on seeded synthetic star fields.

Every scene: a 30×30 cutout, 30-min cadence over three days, Gaussian-PSF stars on a 100 e-/s sky with shot-like
Gaussian noise, the target at the centre (14.5, 14.5) with a 2-px disk aperture, and a 3-hour event window mid-way.
"""

import math

import numpy as np
import pytest

from service.science import diagnosis

SHAPE = (30, 30)
TARGET = (14.5, 14.5)
CADENCE_DAYS = 0.5 / 24
SKY = 100.0
EXPOSURE_S = 1800.0
START, END = 1.5, 1.625  # the event window, BTJD


def star(x, y, flux, sigma_px=1.0):
    rows, columns = np.indices(SHAPE)
    profile = np.exp(-((columns - x) ** 2 + (rows - y) ** 2) / (2 * sigma_px**2))
    return flux * profile / profile.sum()


class Scene:
    """A star field over time: a static image, times and QUALITY, to which tests add what they are about."""

    def __init__(self, seed, days=3.0):
        self.rng = np.random.default_rng(seed)
        self.time = np.arange(0.0, days, CADENCE_DAYS)
        self.quality = np.zeros(self.time.size, dtype=np.int64)
        field = star(*TARGET, 20000.0) + star(TARGET[0] + 4.0, TARGET[1], 15000.0)  # the neighbour 4 px east
        for _ in range(8):
            x, y = self.rng.uniform(2, 28, 2)
            if math.hypot(x - TARGET[0], y - TARGET[1]) > 6:
                field += star(x, y, self.rng.uniform(1000, 10000))
        self.flux = np.repeat((SKY + field)[None], self.time.size, axis=0)
        rows, columns = np.indices(SHAPE)
        self.aperture = np.hypot(columns - TARGET[0], rows - TARGET[1]) <= 2.0

    def in_window(self):
        return (self.time >= START) & (self.time <= END)

    def series(self):
        noise = np.sqrt(np.clip(self.flux, 1.0, None) / EXPOSURE_S)
        observed = self.flux + self.rng.normal(0.0, 1.0, self.flux.shape) * noise
        return diagnosis.PixelSeries(observed, self.time, self.quality, TARGET, self.aperture)


def diagnose(scene):
    return diagnosis.diagnose(scene.series(), START, END)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_dip_on_the_target_is_on_target(seed):
    scene = Scene(seed)
    scene.flux[scene.in_window()] -= 0.005 * star(*TARGET, 20000.0)
    result = diagnose(scene)
    assert result.judgement.verdict == "on_target", result.judgement
    assert result.difference is not None
    assert result.difference.offset_px < 1.0
    # The offset's sigma is honest: on the target, the offset is noise of that size (no pull to a pixel centre).
    assert result.difference.offset_significance < 4.0
    assert result.difference.snr > 0  # the target dimmed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_neighbour_dimming_4_px_away_is_off_target(seed):
    scene = Scene(seed)
    scene.flux[scene.in_window()] -= 0.05 * star(TARGET[0] + 4.0, TARGET[1], 15000.0)
    result = diagnose(scene)
    assert result.judgement.verdict == "off_target", result.judgement
    assert result.difference is not None
    assert result.difference.offset_px == pytest.approx(4.0, abs=0.2)
    assert result.difference.offset_arcsec == pytest.approx(4.0 * 21, abs=0.2 * 21)
    assert result.difference.offset_significance > 3


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_source_moving_past_the_target_is_a_moving_object(seed):
    scene = Scene(seed)
    speed_px_per_hour, angle = 1.4, math.radians(30.0)
    direction = np.array([math.sin(angle), math.cos(angle)])  # (column, row): 30° east of north
    across = np.array([direction[1], -direction[0]])
    t_closest = (START + END) / 2 + 0.02
    for k, t in enumerate(scene.time):
        x, y = np.array(TARGET) + 1.0 * across + direction * speed_px_per_hour * 24 * (t - t_closest)
        if -5 < x < 35 and -5 < y < 35:
            scene.flux[k] += star(x, y, 3000.0)
    result = diagnose(scene)
    assert result.judgement.verdict == "moving_object", result.judgement
    track = result.track
    assert track is not None
    assert track.speed_px_per_hour == pytest.approx(speed_px_per_hour, rel=0.15)
    assert track.speed_arcsec_per_hour == pytest.approx(speed_px_per_hour * 21, rel=0.15)
    assert track.closest_approach_btjd == pytest.approx(t_closest, abs=0.1)
    assert track.closest_approach_px == pytest.approx(1.0, abs=0.5)
    assert track.position_angle_deg == pytest.approx(30.0, abs=5.0)
    assert track.crosses == "aperture"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_background_ramp_is_scattered_light(seed):
    scene = Scene(seed)
    window = scene.in_window()
    phase = (scene.time[window] - START) / (END - START)
    scene.flux[window] += (3.0 * np.sin(np.pi * (0.2 + 0.6 * phase)))[:, None, None]
    result = diagnose(scene)
    assert result.background.departs and result.background.ramp
    assert result.judgement.verdict == "scattered_light", result.judgement


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_dip_only_in_flagged_frames_is_systematics(seed):
    scene = Scene(seed)
    flagged = np.flatnonzero(scene.in_window())[2:4]
    scene.quality[flagged] = 32  # momentum dump
    scene.flux[flagged] -= 0.05 * star(*TARGET, 20000.0)
    result = diagnose(scene)
    assert result.background.flagged_in_window == 2
    assert result.judgement.verdict == "systematics", result.judgement


def test_the_same_dip_unflagged_is_on_target():
    # The control of the systematics test: the flags, not the dip's shape, make the verdict.
    scene = Scene(1)
    dipped = np.flatnonzero(scene.in_window())[2:4]
    scene.flux[dipped] -= 0.05 * star(*TARGET, 20000.0)
    assert diagnose(scene).judgement.verdict == "on_target"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_pure_noise_is_inconclusive(seed):
    # Decided: without a significant difference there is nothing to place, so noise is inconclusive (not a weak
    # on_target).
    result = diagnose(Scene(seed))
    assert result.judgement.verdict == "inconclusive", result.judgement
    assert result.track is None


def test_frames_leave_out_flags_and_take_the_reference_on_both_sides():
    time = np.arange(0.0, 3.0, CADENCE_DAYS)
    quality = np.zeros(time.size, dtype=np.int64)
    quality[10] = 4
    quality[80] = 2048  # stray light: a possible cause, not a bad frame
    frames = diagnosis.select_frames(time, quality, 1.0, 1.5)
    reference = time[frames.reference]
    assert reference.min() >= 1.0 - 1.75 * 0.5 - 1e-9 and reference.max() <= 1.5 + 1.75 * 0.5 + 1e-9
    assert (reference < 1.0 - 0.75 * 0.5 + 1e-9).any() and (reference > 1.5 + 0.75 * 0.5 - 1e-9).any()
    assert not ((reference > 1.0 - 0.375) & (reference < 1.5 + 0.375)).any()
    assert frames.flagged[10] and not frames.flagged[80]
    with pytest.raises(ValueError):
        diagnosis.select_frames(time, quality, 1.5, 1.0)


def test_position_angle_follows_the_given_north():
    scene = Scene(7)
    for k, t in enumerate(scene.time):
        x = TARGET[0] + 1.4 * 24 * (t - 1.5625)  # due east with +row north
        if -5 < x < 35:
            scene.flux[k] += star(x, TARGET[1] + 1.0, 3000.0)
    series = scene.series()
    frames = diagnosis.select_frames(series.time_btjd, series.quality, START, END)
    east = diagnosis.find_track(series, frames)
    rotated = diagnosis.find_track(series, frames, north_pa_deg=90.0)
    assert east is not None and rotated is not None
    assert east.position_angle_deg == pytest.approx(90.0, abs=5.0)
    assert rotated.position_angle_deg == pytest.approx(180.0, abs=5.0)


def test_a_flickering_background_is_not_a_ramp():
    # Every other frame raised: the window's median departs, but no parabola follows it: no slow ramp.
    scene = Scene(1)
    inside = np.flatnonzero(scene.in_window())
    scene.flux[inside[::2]] += 5.0
    result = diagnose(scene)
    assert result.background.departs
    assert not result.background.ramp
    assert result.judgement.verdict != "scattered_light"


def test_never_finite_pixels_and_nan_frames_are_left_out():
    # TESScut cutouts at a CCD's edge hold columns that are NaN in every frame, and frames can be NaN throughout.
    scene = Scene(2)
    scene.flux[scene.in_window()] -= 0.005 * star(*TARGET, 20000.0)
    series = scene.series()
    series.flux[:, :, :3] = np.nan
    series.flux[10] = np.nan
    result = diagnosis.diagnose(series, START, END)
    assert result.judgement.verdict == "on_target", result.judgement


def mover(scene, offset_px, flux=3000.0):
    # Due north (+row) through the window's middle, `offset_px` east of the target.
    for k, t in enumerate(scene.time):
        y = TARGET[1] + 1.4 * 24 * (t - (START + END) / 2)
        if -5 < y < 35:
            scene.flux[k] += star(TARGET[0] + offset_px, y, flux)


def test_a_mover_far_off_does_not_explain_a_dip_on_the_target():
    scene = Scene(4)
    scene.flux[scene.in_window()] -= 0.005 * star(*TARGET, 20000.0)
    mover(scene, -9.0)
    result = diagnose(scene)
    assert result.track is not None and result.track.crosses == "background"
    assert result.judgement.verdict == "on_target", result.judgement


def test_a_mover_through_the_background_alone_is_a_moving_object():
    scene = Scene(4)
    mover(scene, -9.0)
    result = diagnose(scene)
    assert result.track is not None and result.track.crosses == "background"
    assert result.track.closest_approach_px == pytest.approx(9.0, abs=0.5)
    assert result.judgement.verdict == "moving_object", result.judgement


def test_a_window_of_flagged_frames_only_is_systematics_without_a_difference_image():
    scene = Scene(5)
    scene.quality[scene.in_window()] = 4  # coarse point throughout
    scene.flux[scene.in_window()] -= 0.05 * star(*TARGET, 20000.0)
    result = diagnose(scene)
    assert result.difference is None
    assert result.judgement.verdict == "systematics", result.judgement


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_aperture_depth_recovers_an_injected_dip_within_its_error(seed):
    scene = Scene(seed)
    dip = 0.005 * star(*TARGET, 20000.0)
    scene.flux[scene.in_window()] -= dip
    # The truth from the noiseless scene: the dip's share of the sky-free aperture sum.
    reference_flux = float((scene.flux[0][scene.aperture] - SKY).sum())
    expected_ppm = 1e6 * float(dip[scene.aperture].sum()) / reference_flux
    result = diagnose(scene)
    aperture = result.aperture
    assert aperture is not None
    assert aperture.depth_ppm == pytest.approx(expected_ppm, abs=3 * aperture.depth_err_ppm)
    assert aperture.snr == pytest.approx(aperture.depth_ppm / aperture.depth_err_ppm)
    assert aperture.reference_flux_e_per_s == pytest.approx(reference_flux, rel=0.01)
    # The error is the shot noise's, within the scatter of a dozen reference frames' estimate of it.
    n_in, n_ref = int(result.frames.in_event.sum()), int(result.frames.reference.sum())
    shot = math.sqrt(float(scene.flux[0][scene.aperture].sum()) / EXPOSURE_S) * math.sqrt(1 / n_in + 1 / n_ref)
    assert aperture.depth_err_ppm == pytest.approx(1e6 * shot / reference_flux, rel=0.5)


def test_the_aperture_depth_is_none_without_good_frames_in_the_window():
    scene = Scene(5)
    scene.quality[scene.in_window()] = 4
    assert diagnose(scene).aperture is None


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_a_weak_dip_the_aperture_sees_is_on_target(seed):
    # The difference image's box is below its cutout-wide threshold, but the aperture, one place fixed before
    # looking, sees the dip at more than its own threshold, and the centroid sits on the target.
    scene = Scene(seed)
    scene.flux[scene.in_window()] -= 0.0005 * star(*TARGET, 20000.0)
    result = diagnose(scene)
    assert result.difference is not None and result.aperture is not None
    assert abs(result.difference.snr) < diagnosis.MIN_DIFFERENCE_SNR
    assert result.aperture.snr >= diagnosis.MIN_APERTURE_SNR
    assert result.judgement.verdict == "on_target", result.judgement


def judged(aperture_snr, offset_px, difference_snr=4.0, flagged=0):
    """Judge made-up measurements: a weak difference `offset_px` east of the target, sigma 0.3 px."""
    time = np.arange(0.0, 3.0, CADENCE_DAYS)
    frames = diagnosis.select_frames(time, np.zeros(time.size, dtype=np.int64), START, END)
    centroid_xy = (TARGET[0] + offset_px, TARGET[1])
    difference = diagnosis.DifferenceImage(
        np.zeros(SHAPE), centroid_xy, offset_px, 21 * offset_px, 0.3, offset_px / 0.3, difference_snr
    )
    aperture = diagnosis.ApertureDepth(1e6 * aperture_snr / 1e4, 100.0, aperture_snr, 1e4)
    background = diagnosis.BackgroundChange(100.0, 100.0, 0.1, 0.0, False, False, flagged, 32 if flagged else 0)
    return diagnosis.judge(difference, None, background, frames, aperture=aperture).verdict


def test_the_aperture_rule_needs_both_its_depth_and_a_centroid_not_off_the_target():
    assert judged(aperture_snr=5.0, offset_px=0.3) == "on_target"
    assert judged(aperture_snr=-5.0, offset_px=0.3) == "on_target"  # a brightening is an event too
    assert judged(aperture_snr=3.9, offset_px=0.3) == "inconclusive"
    # The aperture dims, but the weak difference sits 2 px (6.7 sigma) away: a neighbour's wing as likely.
    assert judged(aperture_snr=5.0, offset_px=2.0) == "inconclusive"
    # A significant difference is still placed by its centroid, whatever the aperture says.
    assert judged(aperture_snr=5.0, offset_px=2.0, difference_snr=8.0) == "off_target"


def test_a_dip_the_aperture_sees_in_good_frames_is_not_put_down_to_flagged_ones():
    assert judged(aperture_snr=5.0, offset_px=0.3, flagged=2) == "on_target"
    assert judged(aperture_snr=2.0, offset_px=0.3, flagged=2) == "systematics"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_slow_mover_past_a_short_window_keeps_its_speed(seed):
    # At 0.55 px/h a mover covers a pixel for a third of the frames around a 3-hour window: a static image and
    # scatter taken from those frames alone raised its path's pixels and stretched the track.
    scene = Scene(seed)
    speed_px_per_hour, t_closest = 0.55, (START + END) / 2
    for k, t in enumerate(scene.time):
        y = TARGET[1] + speed_px_per_hour * 24 * (t - t_closest)
        if -5 < y < 35:
            scene.flux[k] += star(TARGET[0] + 0.5, y, 1500.0)
    result = diagnose(scene)
    assert result.track is not None
    assert result.track.speed_px_per_hour == pytest.approx(speed_px_per_hour, rel=0.15)
    assert result.track.closest_approach_btjd == pytest.approx(t_closest, abs=0.1)
    assert result.judgement.verdict == "moving_object", result.judgement
