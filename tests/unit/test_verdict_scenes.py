"""The emulator's diagnosis scenes (tests/fake_mast/verdict_scenes.py): each one's pixels get its verdict, and its DV
light curve, TIC rows and pixels tell the same story."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from service.science.diagnosis import Diagnosis, diagnose
from service.science.photometry import threshold_aperture
from service.science.pixels import FLAGGED_QUALITY, PixelSeries
from service.tpf import read_window
from tests.fake_mast.catalogs import query_tic
from tests.fake_mast.footprints import TWO_CCD_POSITION, observations
from tests.fake_mast.scene import CutoutScene, tmag_to_flux
from tests.fake_mast.sectors import sector_frames
from tests.fake_mast.targets import default_archive
from tests.fake_mast.tpf import cutout_geometry, write_tpf
from tests.fake_mast.verdict_scenes import (
    BLEND,
    BLEND_SHARE,
    BLENDED,
    DIAGNOSIS_SCENES,
    DUMP,
    ECLIPSE,
    ECLIPSING_BINARY,
    JITTER_PX,
    MOMENTUM_DUMPS_BTJD,
    PLANET,
    SceneWindow,
    glint_e_per_s,
)

SIZE_PX = 50
REFERENCE_DURATIONS = 1.75
MARGIN_DAYS = 0.2
EXISTING_POSITIONS = [
    (340.8004, -36.3439),  # TIC 214568914
    (63.37389, -69.226789),  # WASP-126
    (24.354314, -45.677896),  # WASP-18
    (107.27, -70.0),  # the 2018 TESScut zip
    TWO_CCD_POSITION,
    (330.9041, -19.9710),  # TIC 206462606
    (18.4189, -59.6598),  # TIC 206544316
    (84.2911879979852, -80.4691197969941),  # Pi Men
]


@dataclass(frozen=True)
class Cutout:
    """The frames read around a scene's window, and what the diagnosis made of them."""

    series: PixelSeries
    median_image: np.ndarray
    payload: bytes
    diagnosis: Diagnosis


def reading_span(window: SceneWindow) -> tuple[float, float]:
    duration = window.end_btjd - window.start_btjd
    reach = REFERENCE_DURATIONS * duration + MARGIN_DAYS
    return window.start_btjd - reach, window.end_btjd + reach


@cache
def cutout(verdict: str) -> Cutout:
    """A 50 × 50 sector cutout of the scene's target, written by the emulator and read as the service reads it."""
    window = DIAGNOSIS_SCENES[verdict]
    (observation,) = observations(
        window.ra_deg, window.dec_deg, cutout_size_px=(SIZE_PX, SIZE_PX), sectors=[window.sector]
    )
    out = io.BytesIO()
    write_tpf(out, observation, window.ra_deg, window.dec_deg, SIZE_PX, SIZE_PX)
    payload = out.getvalue()
    start, end = reading_span(window)
    frames = read_window(io.BytesIO(payload), window.ra_deg, window.dec_deg, start, end, max_frames=1000)
    assert frames.target_xy is not None
    flux = frames.flux.astype(np.float64)
    median_image = np.nanmedian(flux, axis=0)
    aperture = threshold_aperture(median_image, frames.target_xy).mask
    series = PixelSeries(flux, frames.time_btjd, frames.quality, frames.target_xy, aperture)
    return Cutout(series, median_image, payload, diagnose(series, window.start_btjd, window.end_btjd))


def aperture_flux(series: PixelSeries, diagnosis: Diagnosis) -> np.ndarray:
    """Background-subtracted aperture sums per frame (the background: the diagnosis's faint-pixel level)."""
    from service.science.diagnosis import background_levels

    levels = background_levels(series)
    return np.asarray((series.flux - levels[:, None, None])[:, series.aperture].sum(axis=1), dtype=np.float64)


@pytest.mark.parametrize("verdict", sorted(DIAGNOSIS_SCENES))
def test_each_scene_gets_its_verdict(verdict: str) -> None:
    judgement = cutout(verdict).diagnosis.judgement
    assert judgement.verdict == verdict, judgement.explanation


@pytest.mark.parametrize("verdict", sorted(DIAGNOSIS_SCENES))
def test_windows_are_short_inside_the_sector_and_flagged_only_for_systematics(verdict: str) -> None:
    window = DIAGNOSIS_SCENES[verdict]
    frames = sector_frames(window.sector)
    time_btjd = frames.spacecraft_mid_btjd  # within minutes of any CCD's TIME
    start, end = reading_span(window)
    assert 0 < window.end_btjd - window.start_btjd <= 2.0
    assert time_btjd[0] < start and end < time_btjd[-1]
    in_window = (time_btjd >= window.start_btjd - 0.01) & (time_btjd <= window.end_btjd + 0.01)
    flagged = int(((frames.quality[in_window] & FLAGGED_QUALITY) != 0).sum())
    assert (flagged > 0) == (verdict == "systematics")


@pytest.mark.parametrize("verdict", sorted(DIAGNOSIS_SCENES))
def test_the_dv_light_curve_shows_the_tce_in_the_window(verdict: str) -> None:
    window = DIAGNOSIS_SCENES[verdict]
    table = default_archive().table(window.tic_id, window.sector, window.sector, 1)
    time, detrended = table.columns["TIME"], table.columns["LC_DETREND"]
    model, error = table.columns["MODEL_INIT"], table.columns["LC_INIT_ERR"]
    transits = (model < 0) & np.isfinite(detrended)
    dipping = transits & (time >= window.start_btjd) & (time <= window.end_btjd)
    assert dipping.sum() >= 5
    measured, expected = float(np.mean(detrended[dipping])), float(np.mean(model[dipping]))
    sigma = float(np.sqrt(np.sum(error[dipping] ** 2))) / dipping.sum()
    assert measured < -3 * sigma  # a dip in the window ...
    assert abs(measured - expected) < 4 * sigma  # ... of the TCE's shape and depth
    # ... and, over all the TCE's transits, above SPOC's 7.1-sigma detection threshold.
    stacked_sigma = float(np.sqrt(np.sum(error[transits] ** 2))) / transits.sum()
    assert float(np.mean(detrended[transits])) < -7.1 * stacked_sigma


def test_the_planet_dims_its_star_in_the_pixels_by_the_dv_depth() -> None:
    scene = cutout("on_target")
    flux = aperture_flux(scene.series, scene.diagnosis)
    time = scene.series.time_btjd
    bottom = np.abs(PLANET.phase_days(time)) < (PLANET.duration_hours / 2 - PLANET.ingress_hours) / 24 - 0.0105
    outside = np.abs(PLANET.phase_days(time)) > PLANET.duration_hours / 24
    star_light = float(np.median(flux[outside]))
    depth = 1 - float(np.mean(flux[bottom])) / star_light
    assert bottom.sum() >= 3
    assert depth == pytest.approx(PLANET.depth_ppm * 1e-6, rel=0.1)


def test_the_eclipsing_binary_dims_deeply_and_its_share_makes_the_targets_dv_depth() -> None:
    scene = cutout("off_target")
    series = scene.series
    time = series.time_btjd
    bottom = np.abs(ECLIPSE.phase_days(time)) < (ECLIPSE.duration_hours / 2 - ECLIPSE.ingress_hours) / 24 - 0.0105
    outside = np.abs(ECLIPSE.phase_days(time)) > ECLIPSE.duration_hours / 24
    assert bottom.sum() >= 1
    # The target's aperture: the blend's shallow dip, as in the DV light curve.
    flux = aperture_flux(series, scene.diagnosis)
    blended_depth = 1 - float(np.mean(flux[bottom])) / float(np.median(flux[outside]))
    assert blended_depth == pytest.approx(BLEND.depth_ppm * 1e-6, rel=0.15)
    # The EB's own pixels: its full eclipse depth (its flux within 1 px of its centre, background removed).
    difference = scene.diagnosis.difference
    assert difference is not None
    x, y = (round(v) for v in difference.centroid_xy)
    stamp = series.flux[:, y - 1 : y + 2, x - 1 : x + 2].sum(axis=(1, 2))
    loss = float(np.median(stamp[outside]) - np.mean(stamp[bottom]))
    eb_flux = tmag_to_flux(ECLIPSING_BINARY.tmag)
    assert loss == pytest.approx(ECLIPSE.depth_ppm * 1e-6 * eb_flux * 0.75, rel=0.2)  # a 3×3 box holds ~75 %
    assert BLEND_SHARE == pytest.approx(eb_flux / (eb_flux + tmag_to_flux(BLENDED.tmag)), rel=0.05)


def test_a_cone_search_around_the_blended_target_finds_the_eclipsing_binary() -> None:
    request = {
        "service": "Mast.Catalogs.Filtered.Tic.Position",
        "params": {"columns": "*", "filters": [], "ra": BLENDED.ra_deg, "dec": BLENDED.dec_deg, "radius": 0.03},
        "format": "json",
    }
    rows = {row["ID"]: row for row in query_tic(request)["data"]}
    assert set(rows) == {str(BLENDED.tic_id), str(ECLIPSING_BINARY.tic_id)}
    assert rows[str(ECLIPSING_BINARY.tic_id)]["Tmag"] == ECLIPSING_BINARY.tmag


def test_the_glint_raises_and_lowers_the_whole_background_smoothly() -> None:
    scene = cutout("scattered_light")
    background = scene.diagnosis.background
    series = scene.series
    corner = series.flux[:, :8, :8].mean(axis=(1, 2))  # star-free enough: follows the sky
    expected = glint_e_per_s(series.time_btjd)
    quiet = expected == 0
    rise = corner - np.median(corner[quiet])
    assert background.ramp and background.flagged_in_window == 0
    assert np.corrcoef(rise, expected)[0, 1] > 0.98
    assert float(rise.max()) == pytest.approx(float(expected.max()), rel=0.15)


def test_the_jitter_moves_the_image_in_momentum_dump_frames_only() -> None:
    scene = cutout("systematics")
    series = scene.series
    dumps = (series.quality & 32) != 0
    aperture = series.aperture
    columns = np.arange(series.flux.shape[2])
    rows = np.arange(series.flux.shape[1])
    flux = series.flux - np.median(series.flux, axis=(1, 2))[:, None, None]
    weights = np.where(aperture, flux, 0.0)
    x = (weights * columns[None, None, :]).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
    y = (weights * rows[None, :, None]).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
    shift = np.hypot(x - np.median(x), y - np.median(y))
    assert dumps.sum() >= 1
    assert np.all(shift[dumps] > 0.5 * JITTER_PX)
    assert np.all(shift[~dumps] < 0.1 * JITTER_PX)


def test_the_momentum_dumps_are_the_flagged_frames_of_sector_1() -> None:
    frames = sector_frames(1)
    window = DIAGNOSIS_SCENES["systematics"]
    (observation,) = observations(window.ra_deg, window.dec_deg, sectors=[1])
    time_btjd, _ = frames.for_ccd(*observation.frame.centre_radec)
    flagged = time_btjd[(frames.quality & 32) != 0]
    for dump in MOMENTUM_DUMPS_BTJD:
        assert np.min(np.abs(flagged - dump)) < 0.011  # on the frame, or between the two frames it straddles
    assert DUMP.epoch_btjd == MOMENTUM_DUMPS_BTJD[0]


@pytest.mark.parametrize("position", EXISTING_POSITIONS)
def test_no_existing_cutout_gets_a_scene_effect(position: tuple[float, float]) -> None:
    frames = sector_frames(1)
    for observation in observations(*position, cutout_size_px=(SIZE_PX, SIZE_PX), sectors=[1]):
        geometry = cutout_geometry(observation, *position, SIZE_PX, SIZE_PX)
        scene = CutoutScene(
            observation.frame, geometry.col0, geometry.row0, SIZE_PX, SIZE_PX, frames.cadence_days,
            frames.spacecraft_mid_btjd, frames.orbit_starts_btjd,
        )  # fmt: skip
        scene.populate(*position)
        assert scene.effects == []
