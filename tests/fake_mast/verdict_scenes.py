"""One sector-1 scene per diagnosis verdict: DV data, TIC rows and pixels that agree with each other.

The pixel diagnosis (``service.science.diagnosis``) tells on_target, off_target, moving_object, scattered_light and
systematics apart. The moving source next to TIC 214568914 (``scene.py``) is the moving_object scene; this module
adds the other four, each on a sector-1 CCD that no other emulated cutout uses, so no existing pixel changes. Each
is a DV target (``targets.CATALOGUE``: a TCE and its synthetic 2-minute light curve), a TIC row (``catalogs``), and
a pixel effect that ``scene.CutoutScene`` asks for through :func:`scene_effects`. All TIC ids from 1200000101 on are
invented. Pixel (col, row) are CCD pixels; a 50 × 50 cutout puts the target at ≈ (25.3, 24.6) (0-based x, y).
Times are BTJD (the PIXELS ``TIME`` column; DV's ``TIME``).

on_target: TIC 1200000101, a hot Jupiter (camera 2, CCD 1)
    RA 333.89988, Dec −60.38633 at (600.3, 800.6); Tmag 10.8 (7170 e-/s). A planet with P = 3.0712 d,
    epoch 1326.1375, depth 8000 ppm, duration 2.8 h (ingress 0.35 h). The DV light curve (relative flux, 1300 ppm
    per 2-min cadence) dips by 8000 ppm; the star's PSF in the pixels loses 8000 ppm of its 7170 e-/s (57 e-/s,
    averaged over each 30-minute exposure) at the same times. Window: the second transit, 1329.1504–1329.2670.
off_target: TIC 1200000102 and its neighbour TIC 1200000103, an eclipsing binary (camera 2, CCD 4)
    Target RA 329.71818, Dec −52.44123 at (600.3, 800.6), Tmag 11.2 (4960 e-/s). The EB, TIC 1200000103, is at
    RA 329.68974, Dec −52.43725, 64″ away at (602.8, 802.4) (+2.5, +1.8 px), Tmag 14.0 (377 e-/s); its eclipses
    (P = 1.7843 d, epoch 1326.0512, 25 % deep, 2.4 h long, 0.8 h ingress) take 94 e-/s from its own pixels. The
    target's aperture (the service's 3-sigma threshold aperture on the 50 × 50 cutout, 49 px) holds 99.8 % of the
    EB's flux, 7.04 % of the aperture's star light (:data:`BLEND_SHARE`), so the target's DV light curve dips by
    0.25 × 0.0704 = 17600 ppm at the EB's eclipses: the target's TCE, a "hot Jupiter". The difference image puts
    the change on the EB, 3.1 px (65″) from the target. Window: the eclipse at 1329.6198, 1329.5698–1329.6698.
scattered_light: TIC 1200000104, a glint over camera 1, CCD 1
    RA 318.51674, Dec −40.87861 at (1000.4, 1200.7), Tmag 11.5 (3770 e-/s). Late in sector 1 the Moon nears
    camera 1 (HEASARC's sector-1 notes); its light raises the whole of CCD 1's background by
    ``A(t) · (0.75 + 0.5 (col + row) / 4096)`` e-/s per pixel, A a trapezoid peaking at 80 e-/s at BTJD 1350.25,
    16 h long with 7 h ramps (about +65 % of camera 1's 120 e-/s). Background subtraction leaves 5 % of it in the
    target's 13-px SPOC aperture: 0.05 × 80 × 13 / 3770 ≈ 1.4 %, inverted (the sky estimate, from brighter-than-
    average pixels, over-subtracts), so DV sees a single 13800 ppm dip of the same shape: a single-event TCE
    (P 13.9 d, epoch 1350.25). Window: the event, 1349.9167–1350.5833. The frames are not flagged 2048: the
    emulator's QUALITY is one per sector, shared by every CCD, and flagging would change every other cutout.
systematics: TIC 1200000105, momentum dumps (camera 3, CCD 2)
    RA 349.51768, Dec −72.42810 at (1000.4, 1200.7), Tmag 10.5 (9460 e-/s). In every frame of sector 1 flagged
    QUALITY 32 (momentum dump; :data:`MOMENTUM_DUMPS_BTJD`) this CCD's image is shifted by 0.25 px (a direction
    per frame): the pointing excursion of the dump. Good frames never move. A shift like that takes 0.6-1.3 % of
    the star's light out of a 9-20 px SPOC-like aperture (the service's 38-px one hardly notices), so the target's
    DV light curve dips by 4000 ppm for 0.75 h around each dump (seen in the cadences after the flagged 2-minute
    ones, while the pointing settles), which DV fits as a TCE with P = 2.5 d, epoch 1327.8473: the dumps' spacing
    in orbit 1 (orbit 2's dumps fall at another phase; MODEL_INIT's transits there and at 1325.35 find nothing).
    Window: the dump at 1335.3472, 1335.2472–1335.4472 (one flagged frame among 10).
moving_object: TIC 214568914 (``scene.py``), sector 1, 1334.0–1335.0.

Each window lies in sector 1 with more than 1.75 window-lengths of frames on both sides, and no window but the
systematics one holds a flagged frame. :data:`DIAGNOSIS_SCENES` lists them for tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .footprints import ccd_frame, stable_unit_interval
from .targets import (
    SOLAR_RADIUS_IN_EARTH_RADII,
    InjectedSignal,
    Star,
    Target,
    TceSpec,
    TransitShape,
    trapezoid_dip,
)

# Imports: this module builds on targets' types, and targets registers its DV targets from inside
# _build_catalogue (after those types exist); scene.py calls scene_effects, so the pixel code imports scene's
# PSF inside its functions.
if TYPE_CHECKING:
    from .scene import CutoutScene

Effect = Callable[[np.ndarray, int, int], None]  # adds to model frames first..stop-1, shape (k, ny, nx)

EXPOSURE_SAMPLES = 9  # points per 30-minute exposure over which a dip is averaged
QUALITY_MOMENTUM_DUMP = 32


@dataclass(frozen=True)
class SceneWindow:
    """Where and when to diagnose a verdict's scene: the target, its sector and the event's window."""

    verdict: str
    tic_id: int
    ra_deg: float
    dec_deg: float
    sector: int
    start_btjd: float
    end_btjd: float


@dataclass(frozen=True)
class SceneStar:
    """A star of the scenes as the TIC knows it (the DV header repeats these values)."""

    tic_id: int
    ra_deg: float
    dec_deg: float
    tmag: float
    teff_k: float
    logg_cgs: float
    radius_rsun: float
    mass_msun: float


PLANET_HOST = SceneStar(1200000101, 333.89988, -60.38633, 10.8, 6050.0, 4.30, 1.21, 1.12)
BLENDED = SceneStar(1200000102, 329.71818, -52.44123, 11.2, 5600.0, 4.45, 0.98, 0.97)
ECLIPSING_BINARY = SceneStar(1200000103, 329.68974, -52.43725, 14.0, 5200.0, 4.50, 0.85, 0.90)
GLINTED = SceneStar(1200000104, 318.51674, -40.87861, 11.5, 5900.0, 4.35, 1.10, 1.05)
JITTERED = SceneStar(1200000105, 349.51768, -72.42810, 10.5, 6300.0, 4.25, 1.30, 1.20)
SCENE_STARS = (PLANET_HOST, BLENDED, ECLIPSING_BINARY, GLINTED, JITTERED)

PLANET = TransitShape(3.0712, 1326.1375, 8000.0, 2.8, 0.35)
ECLIPSE = TransitShape(1.7843, 1326.0512, 250000.0, 2.4, 0.8)
BLEND_SHARE = 0.0704  # the EB's share of the star light in the target's aperture (see the module's notes)
BLEND = TransitShape(ECLIPSE.period_days, ECLIPSE.epoch_btjd, round(ECLIPSE.depth_ppm * BLEND_SHARE), 2.4, 0.8)
GLINT_CCD = (1, 1, 1)
GLINT_PEAK_E_PER_S = 80.0
GLINT = TransitShape(13.9, 1350.25, 13800.0, 16.0, 7.0)  # DV's dip; the pixels' bump has the same profile
JITTER_CCD = (1, 3, 2)
JITTER_PX = 0.25
# The sector-1 frames flagged QUALITY 32, as TIME on camera 3 / CCD 2 (orbit 2's dumps straddle two frames).
MOMENTUM_DUMPS_BTJD = (1327.8473, 1330.3473, 1332.8473, 1335.3472, 1337.8472, 1342.1909, 1344.6909, 1347.1909,
                       1349.6908, 1352.1908)  # fmt: skip
DUMP = TransitShape(2.5, MOMENTUM_DUMPS_BTJD[0], 4000.0, 0.75, 0.15)

DIAGNOSIS_SCENES: dict[str, SceneWindow] = {
    "moving_object": SceneWindow("moving_object", 214568914, 340.8004, -36.3439, 1, 1334.0, 1335.0),
    "on_target": SceneWindow("on_target", 1200000101, PLANET_HOST.ra_deg, PLANET_HOST.dec_deg, 1, 1329.1504, 1329.2670),
    "off_target": SceneWindow("off_target", 1200000102, BLENDED.ra_deg, BLENDED.dec_deg, 1, 1329.5698, 1329.6698),
    "scattered_light": SceneWindow(
        "scattered_light", 1200000104, GLINTED.ra_deg, GLINTED.dec_deg, 1, 1349.9167, 1350.5833
    ),
    "systematics": SceneWindow("systematics", 1200000105, JITTERED.ra_deg, JITTERED.dec_deg, 1, 1335.2472, 1335.4472),
}


# ---------------------------------------------------------------------------------------------------------------
# DV targets


def _star(star: SceneStar, noise_ppm: float) -> Star:
    return Star(star.tic_id, star.ra_deg, star.dec_deg, 0.0, 0.0, star.tmag, star.teff_k, star.logg_cgs, 0.0,
                star.radius_rsun, noise_ppm)  # fmt: skip


def _tce(shape: TransitShape, snr: float, max_ses: float, star: SceneStar, a_over_rstar: float) -> TceSpec:
    """A sector-1 TCE_1 whose radius ratio is the square root of its depth (planet radius from the star's)."""
    ratio = round(math.sqrt(shape.depth_ppm * 1e-6), 4)
    radius_earth = round(ratio * star.radius_rsun * SOLAR_RADIUS_IN_EARTH_RADII, 3)
    return TceSpec(1, 1, 1, shape, snr, snr, max_ses, radius_earth, ratio, a_over_rstar, 0.3, 88.5, 12.0)


def scene_targets() -> list[Target]:
    """The DV targets of the four scenes (registered in ``targets.CATALOGUE``)."""
    dumps = tuple(
        InjectedSignal(TransitShape(DUMP.period_days, t, DUMP.depth_ppm, DUMP.duration_hours, DUMP.ingress_hours),
                       single_event=True)
        for t in MOMENTUM_DUMPS_BTJD
    )  # fmt: skip
    return [
        Target(_star(PLANET_HOST, 1300.0), (_tce(PLANET, 160.0, 56.0, PLANET_HOST, 8.9),), "synthetic",
               (InjectedSignal(PLANET),)),
        Target(_star(BLENDED, 1600.0), (_tce(BLEND, 350.0, 93.0, BLENDED, 6.1),), "synthetic",
               (InjectedSignal(BLEND),)),
        Target(_star(GLINTED, 1900.0), (_tce(GLINT, 95.0, 95.0, GLINTED, 31.0),), "synthetic",
               (InjectedSignal(GLINT, single_event=True),)),
        Target(_star(JITTERED, 1100.0), (_tce(DUMP, 8.4, 6.3, JITTERED, 41.0),), "synthetic", dumps),
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Pixels


def scene_effects(scene: CutoutScene) -> list[Effect]:
    """The time-dependent additions to ``scene``'s model that these scenes make (none on other CCDs)."""
    frame = scene.frame
    if frame.local or frame.sector != 1:
        return []
    ccd = (frame.sector, frame.camera, frame.ccd)
    effects = [
        _dimming(scene, PLANET_HOST, PLANET) if ccd == (1, 2, 1) else None,
        _dimming(scene, ECLIPSING_BINARY, ECLIPSE) if ccd == (1, 2, 4) else None,
        _glint(scene) if ccd == GLINT_CCD else None,
        _jitter(scene) if ccd == JITTER_CCD else None,
    ]
    return [effect for effect in effects if effect is not None]


def _exposure_mean(shape: TransitShape, time_btjd: np.ndarray, cadence_days: float) -> np.ndarray:
    """The relative dip (≤ 0) of a periodic shape averaged over each frame's exposure (80 % of the cadence)."""
    offsets = np.linspace(-0.4, 0.4, EXPOSURE_SAMPLES) * cadence_days
    return np.asarray(np.mean([shape.model(time_btjd + dt) for dt in offsets], axis=0), dtype=np.float64)


def _dimming(scene: CutoutScene, star: SceneStar, shape: TransitShape) -> Effect | None:
    """A catalogued star that loses ``shape``'s fraction of its flux (a transit, an eclipse)."""
    from .scene import add_psf, tmag_to_flux  # scene.py imports this module for its hook

    col, row = (float(v) for v in scene.frame.sky_to_pixel(star.ra_deg, star.dec_deg))
    stamp = np.zeros((scene.ny, scene.nx))
    add_psf(stamp, scene.cols, scene.rows, col, row, tmag_to_flux(star.tmag))
    if not stamp.any():
        return None
    relative = _exposure_mean(shape, scene.time_btjd, scene.cadence_days)

    def effect(model: np.ndarray, first: int, stop: int) -> None:
        for k in np.flatnonzero(relative[first:stop]):
            model[k] += relative[first + k] * stamp

    return effect


def glint_e_per_s(time_btjd: np.ndarray) -> np.ndarray:
    """The scattered light's level A(t) at the CCD's mean (e-/s per pixel): the DV dip's profile, upside down."""
    profile = trapezoid_dip(time_btjd - GLINT.epoch_btjd, 1e6, GLINT.duration_hours, GLINT.ingress_hours)
    return np.asarray(-GLINT_PEAK_E_PER_S * profile, dtype=np.float64)


def _glint(scene: CutoutScene) -> Effect:
    """Scattered light over the whole CCD: A(t) times a gentle gradient towards the CCD's far corner."""
    level = glint_e_per_s(scene.time_btjd)
    pattern = 0.75 + 0.5 * (scene.rows[:, None] + scene.cols[None, :]) / 4096.0

    def effect(model: np.ndarray, first: int, stop: int) -> None:
        for k in np.flatnonzero(level[first:stop]):
            model[k] += level[first + k] * pattern

    return effect


def jitter_offset_px(frame_index: int) -> tuple[float, float]:
    """The (col, row) shift of the jitter CCD's image in a flagged frame: 0.25 px, a direction per frame."""
    angle = 2 * math.pi * stable_unit_interval("jitter", *JITTER_CCD, frame_index)
    return JITTER_PX * math.cos(angle), JITTER_PX * math.sin(angle)


def _jitter(scene: CutoutScene) -> Effect | None:
    """Every star of the scene displaced in the momentum-dump frames, and only there."""
    from .scene import add_psf  # scene.py imports this module for its hook
    from .sectors import sector_frames

    flagged = set(np.flatnonzero(sector_frames(1).quality & QUALITY_MOMENTUM_DUMP).tolist())
    if not flagged:
        return None

    def effect(model: np.ndarray, first: int, stop: int) -> None:
        for index in sorted(flagged & set(range(first, stop))):
            d_col, d_row = jitter_offset_px(index)
            shifted = np.zeros_like(scene.static)
            for col, row, flux in scene.stars:
                add_psf(shifted, scene.cols, scene.rows, col + d_col, row + d_row, flux)
            model[index - first] += shifted - scene.static

    return effect


def scene_star_pixel(star: SceneStar, ccd: tuple[int, int, int]) -> tuple[float, float]:
    """A scene star's (col, row) on its CCD (for tests and the notes above)."""
    col, row = ccd_frame(*ccd).sky_to_pixel(star.ra_deg, star.dec_deg)
    return float(col), float(row)
