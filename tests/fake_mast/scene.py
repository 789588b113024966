"""What a TESS CCD sees, frame by frame: the pixel values of a synthetic TESScut cutout.

Everything is a function of the CCD (sector, camera, CCD), its pixel coordinates, the sky and the frame index, never
of the request, so overlapping cutouts of the same CCD hold identical values where they overlap. The only exception
is the star put at the requested position when no catalogued star is there (see below).

- Stars: Gaussian PSFs (σ = 0.8 px, integrated over each pixel) at fixed sky positions, with
  ``flux = 15000 · 10^(−0.4 (Tmag − 10))`` e-/s:
  - the catalogued TIC stars of ``catalogs.py`` (TIC 214568914: Tmag 15.34 → 110 e-/s);
  - field stars, about 300 per square degree with Tmag 10-17.5 (counts growing as 10^(0.3 Tmag)), seeded per sky
    tile of 0.2° in Dec (rings) by about 0.2° in RA;
  - a star at the requested position when no catalogued star lies within 2″ of it, with Tmag 10-14 derived from
    the position.
- Background: ``b0 · (1 + 0.04 sin(2π t / 13.7 d) + 0.35 e^(−Δt / 0.5 d)) · (1 + small linear gradient over the
  CCD)``, where Δt is the time since the orbit started (scattered light) and b0 = 60-140 e-/s depends on the camera
  (brighter near the ecliptic).
- Noise: Gaussian with ``σ² = F / T_exp + (10 e-)² · N_reads / T_exp²`` for model flux F (T_exp = 0.8 × cadence,
  N_reads = cadence / 2 s); FLUX_ERR is that σ (0.34 e-/s at 100 e-/s, like the real sector-1 file). The normal
  deviates come from a fixed table indexed by a hash of (CCD, column, row, frame). FLUX is rounded to 1/256 e-/s
  (about one ADU of a 30-minute FFI) and FLUX_ERR to 1/4096 e-/s.
- FLUX is calibrated but not background-subtracted, as in TESScut. Pixels off the CCD are NaN.
- The diagnosis scenes (``verdict_scenes.py``: a transit, an eclipsing binary, a scattered-light glint, momentum-
  dump jitter) add their time-dependent light on their own sector-1 CCDs through :func:`scene_effects`.

The moving source next to TIC 214568914 (sector 1, camera 1, CCD 2 only)
-------------------------------------------------------------------------
A solar-system object of 150 e-/s (Tmag ≈ 14.6, a PSF peak of 23-33 e-/s, i.e. 60-100 × the 0.34 e-/s background
noise) crosses the target's neighbourhood in a straight line, visible from BTJD 1333.9 to 1335.0. Its position is
defined relative to the target's CCD position (col_t, row_t), in CCD pixels::

    (col, row)(t) = (col_t, row_t) + 2.5 · (−sin 20°, cos 20°) + 40 px/d · (t − 1334.45) · (cos 20°, sin 20°)

so it passes 2.5 px from the target at BTJD 1334.45 and moves 40 px/day at 20° to the column axis. Offsets from
the target: t = 1333.90 → (−21.53, −5.17); 1334.00 → (−17.77, −3.81); 1334.45 → (−0.86, +2.35) (closest);
1334.90 → (+16.06, +8.51); 1335.00 → (+19.82, +9.87). In a 50 × 50 cutout centred on the target (target at pixel
≈ (25, 25), 0-based (x = column, y = row)) it enters near (3.5, 19.8) and leaves near (44.8, 34.9). TIME here is
the frame's mid-exposure BTJD (the PIXELS ``TIME`` column).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .catalogs import catalogue_positions
from .footprints import CcdFrame, angular_separation_deg, ccd_frame, stable_unit_interval
from .verdict_scenes import Effect, scene_effects

PSF_SIGMA_PX = 0.8
FLUX_TMAG10_E_PER_S = 15000.0
READ_NOISE_E = 10.0
READ_TIME_S = 2.0
DEADTIME_FRACTION = 0.8
FIELD_STARS_PER_DEG2 = 300.0
FIELD_TMAG_RANGE = (10.0, 17.5)
TILE_DEG = 0.2
TARGET_MATCH_DEG = 2.0 / 3600.0
NORMAL_TABLE_BITS = 20
FLUX_QUANTUM_INV = 256.0
ERR_QUANTUM_INV = 4096.0

MOVER_TIC = 214568914
MOVER_CCD = (1, 1, 2)
MOVER_START_BTJD = 1333.9
MOVER_END_BTJD = 1335.0
MOVER_CLOSEST_BTJD = 1334.45
MOVER_MISS_PX = 2.5
MOVER_SPEED_PX_PER_DAY = 40.0
MOVER_ANGLE_DEG = 20.0
MOVER_FLUX_E_PER_S = 150.0

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_BACKGROUND_E_PER_S = {1: 120.0, 2: 95.0, 3: 75.0, 4: 70.0}


def tmag_to_flux(tmag: float) -> float:
    """TESS-band flux in e-/s of a star of magnitude ``tmag``."""
    return FLUX_TMAG10_E_PER_S * 10.0 ** (-0.4 * (tmag - 10.0))


def mover_offset_px(time_btjd: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """The moving source's (col, row) offset from TIC 214568914 on its sector-1 CCD, in pixels."""
    angle = math.radians(MOVER_ANGLE_DEG)
    along = MOVER_SPEED_PX_PER_DAY * (np.asarray(time_btjd, dtype=float) - MOVER_CLOSEST_BTJD)
    d_col = -MOVER_MISS_PX * math.sin(angle) + along * math.cos(angle)
    d_row = MOVER_MISS_PX * math.cos(angle) + along * math.sin(angle)
    return d_col, d_row


@lru_cache(maxsize=1)
def _normal_table() -> np.ndarray:
    return np.random.default_rng(20180725).standard_normal(1 << NORMAL_TABLE_BITS).astype(np.float32)


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    z = values ^ (values >> np.uint64(30))
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return z


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); numpy has no erf and scipy is not a dependency."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _pixel_fractions(centres: np.ndarray, position: float) -> np.ndarray:
    """Fraction of a 1-D Gaussian centred at ``position`` that falls in each pixel [c - 0.5, c + 0.5]."""
    scale = 1.0 / (PSF_SIGMA_PX * math.sqrt(2.0))
    return 0.5 * (_erf((centres + 0.5 - position) * scale) - _erf((centres - 0.5 - position) * scale))


def add_psf(image: np.ndarray, cols: np.ndarray, rows: np.ndarray, col: float, row: float, flux: float) -> None:
    """Add a star of ``flux`` at CCD (col, row) to ``image`` (ny, nx) whose pixel centres are ``cols``/``rows``."""
    if not (cols[0] - 5 <= col <= cols[-1] + 5 and rows[0] - 5 <= row <= rows[-1] + 5):
        return
    image += flux * np.outer(_pixel_fractions(rows, row), _pixel_fractions(cols, col))


# ---------------------------------------------------------------------------------------------------------------
# The fixed sky


def _ring_tiles(ring: int) -> int:
    dec_mid = -90.0 + (ring + 0.5) * TILE_DEG
    return max(1, math.floor(360.0 * math.cos(math.radians(dec_mid)) / TILE_DEG))


def _tile_of(ra_deg: float, dec_deg: float) -> tuple[int, int]:
    ring = min(int((dec_deg + 90.0) / TILE_DEG), round(180.0 / TILE_DEG) - 1)
    n = _ring_tiles(ring)
    return ring, min(int(ra_deg % 360.0 / 360.0 * n), n - 1)


@lru_cache(maxsize=4096)
def _tile_stars(ring: int, index: int) -> tuple[tuple[float, float, float], ...]:
    """(RA, Dec, Tmag) of the field stars of one sky tile."""
    n_tiles = _ring_tiles(ring)
    dec_low = -90.0 + ring * TILE_DEG
    ra_width = 360.0 / n_tiles
    area = math.radians(ra_width) * (math.sin(math.radians(dec_low + TILE_DEG)) - math.sin(math.radians(dec_low)))
    area_deg2 = area * (180.0 / math.pi) ** 2
    rng = np.random.default_rng([ring, index, 7])
    count = int(rng.poisson(FIELD_STARS_PER_DEG2 * area_deg2))
    ra = (index + rng.random(count)) * ra_width
    sin_dec = math.sin(math.radians(dec_low)) + rng.random(count) * (
        math.sin(math.radians(dec_low + TILE_DEG)) - math.sin(math.radians(dec_low))
    )
    dec = np.degrees(np.arcsin(sin_dec))
    low, high = (10.0 ** (0.3 * m) for m in FIELD_TMAG_RANGE)
    tmag = np.log10(low + rng.random(count) * (high - low)) / 0.3
    return tuple(zip(ra.tolist(), dec.tolist(), tmag.tolist(), strict=True))


def field_stars(frame: CcdFrame, cols: np.ndarray, rows: np.ndarray) -> list[tuple[float, float, float]]:
    """(RA, Dec, Tmag) of the field stars that can touch the pixels spanned by ``cols`` x ``rows``."""
    grid_cols = np.append(np.arange(cols[0] - 5, cols[-1] + 6, 8.0), cols[-1] + 5)
    grid_rows = np.append(np.arange(rows[0] - 5, rows[-1] + 6, 8.0), rows[-1] + 5)
    mesh_cols, mesh_rows = np.meshgrid(grid_cols, grid_rows)
    ra, dec = frame.pixel_to_sky(mesh_cols.ravel(), mesh_rows.ravel())
    tiles = sorted({_tile_of(r, d) for r, d in zip(ra.tolist(), dec.tolist(), strict=True)})
    return [star for tile in tiles for star in _tile_stars(*tile)]


# ---------------------------------------------------------------------------------------------------------------
# A cutout's scene


@dataclass
class CutoutScene:
    """The model of one cutout: static stars, background and noise hashing; :meth:`frames` renders rows."""

    frame: CcdFrame
    col0: int
    row0: int
    nx: int
    ny: int
    cadence_days: float
    time_btjd: np.ndarray  # mid-exposure TIME of every FFI of the sector
    orbit_starts_btjd: tuple[float, ...]

    def __post_init__(self) -> None:
        self.cols = np.arange(self.col0, self.col0 + self.nx, dtype=np.float64)
        self.rows = np.arange(self.row0, self.row0 + self.ny, dtype=np.float64)
        on_cols = (self.cols >= 0) & (self.cols < 2048)
        on_rows = (self.rows >= 0) & (self.rows < 2048)
        self.on_ccd = np.outer(on_rows, on_cols)
        key = (self.frame.sector, self.frame.camera, self.frame.ccd, self.frame.local)
        self._ccd_seed = np.uint64(int(stable_unit_interval("ccd", *key) * 2**63))
        self.exposure_s = self.cadence_days * 86400.0 * DEADTIME_FRACTION
        reads = self.cadence_days * 86400.0 / READ_TIME_S
        self._read_variance = READ_NOISE_E**2 * reads / self.exposure_s**2
        self.static = np.zeros((self.ny, self.nx), dtype=np.float64)
        self._gradient = np.outer(1.0 + 0.03 * (self.rows - 1024.0) / 1024.0, 1.0 + 0.05 * (self.cols - 1024.0) / 1024)
        level = _BACKGROUND_E_PER_S[self.frame.camera] * (0.85 + 0.3 * stable_unit_interval("bkg", *key))
        phase = 2 * math.pi * stable_unit_interval("phase", *key)
        t = self.time_btjd
        since_orbit = np.full(t.shape, np.inf)
        for start in self.orbit_starts_btjd:
            since_orbit = np.where(t >= start, t - start, since_orbit)
        scattered = np.exp(-np.minimum(since_orbit, 50.0) / 0.5)
        self.background = level * (1.0 + 0.04 * np.sin(2 * math.pi * t / 13.7 + phase) + 0.35 * scattered)
        self._pixel_keys = self._make_pixel_keys()
        self._mover_offset: tuple[float, float] | None = None
        self.stars: list[tuple[float, float, float]] = []  # (col, row, flux) of every star in the static image
        self.effects: list[Effect] = []

    def _make_pixel_keys(self) -> np.ndarray:
        cols = (self.cols.astype(np.int64) + 4096).astype(np.uint64)
        rows = (self.rows.astype(np.int64) + 4096).astype(np.uint64)
        keys = (rows[:, np.newaxis] << np.uint64(16)) | cols[np.newaxis, :]
        return _mix64(keys ^ self._ccd_seed)

    def add_star(self, ra_deg: float, dec_deg: float, tmag: float) -> None:
        """Add one star at a sky position to the static image."""
        col, row = self.frame.sky_to_pixel(ra_deg, dec_deg)
        if np.isfinite(col) and np.isfinite(row):
            add_psf(self.static, self.cols, self.rows, float(col), float(row), tmag_to_flux(tmag))
            self.stars.append((float(col), float(row), tmag_to_flux(tmag)))

    def populate(self, ra_deg: float, dec_deg: float) -> None:
        """Put the fixed sky (catalogue and field stars, the requested-position star, the mover) in the scene."""
        for ra, dec, tmag in field_stars(self.frame, self.cols, self.rows):
            self.add_star(ra, dec, tmag)
        near_target = False
        for _, ra, dec, tmag in catalogue_positions():
            self.add_star(ra, dec, tmag)
            near_target = near_target or angular_separation_deg(ra, dec, ra_deg, dec_deg) <= TARGET_MATCH_DEG
        if not near_target:
            tmag = 10.0 + 4.0 * stable_unit_interval("target", round(ra_deg, 6), round(dec_deg, 6))
            self.add_star(ra_deg, dec_deg, tmag)
        self._mover_offset = _mover_anchor(self.frame)
        self.effects = scene_effects(self)  # the diagnosis scenes' transits, eclipses, glint and jitter

    def frames(self, first: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """FLUX and FLUX_ERR (float32, shape (k, ny, nx), NaN off the CCD) of frames ``first..stop-1``."""
        index = np.arange(first, stop, dtype=np.uint64)
        model = self.background[first:stop, np.newaxis, np.newaxis] * self._gradient + self.static
        if self._mover_offset is not None:
            self._add_mover(model, first, stop)
        for effect in self.effects:
            effect(model, first, stop)
        sigma = np.sqrt(np.maximum(model, 0.0) / self.exposure_s + self._read_variance)
        keys = _mix64(self._pixel_keys[np.newaxis, :, :] + index[:, np.newaxis, np.newaxis] * _GOLDEN)
        noise = _normal_table()[(keys >> np.uint64(64 - NORMAL_TABLE_BITS)).astype(np.intp)]
        # Calibrated FFI values are whole ADUs times gain / exposure (~0.004 e-/s); rounding to 1/256 e-/s keeps that
        # texture and lets the zip deflate 2-3 times better than float noise would.
        flux = (np.round((model + sigma * noise) * FLUX_QUANTUM_INV) / FLUX_QUANTUM_INV).astype(np.float32)
        flux_err = (np.round(sigma * ERR_QUANTUM_INV) / ERR_QUANTUM_INV).astype(np.float32)
        if not self.on_ccd.all():
            flux[:, ~self.on_ccd] = np.nan
            flux_err[:, ~self.on_ccd] = np.nan
        return flux, flux_err

    def _add_mover(self, model: np.ndarray, first: int, stop: int) -> None:
        assert self._mover_offset is not None
        anchor_col, anchor_row = self._mover_offset
        times = self.time_btjd[first:stop]
        for k in np.nonzero((times >= MOVER_START_BTJD) & (times <= MOVER_END_BTJD))[0]:
            d_col, d_row = mover_offset_px(float(times[k]))
            add_psf(
                model[k], self.cols, self.rows, anchor_col + float(d_col), anchor_row + float(d_row), MOVER_FLUX_E_PER_S
            )


def _mover_anchor(frame: CcdFrame) -> tuple[float, float] | None:
    """TIC 214568914's CCD position when ``frame`` is its sector-1 CCD (the only one with the moving source)."""
    if (frame.sector, frame.camera, frame.ccd) != MOVER_CCD or frame.local:
        return None
    ra, dec = next((r, d) for tic, r, d, _ in catalogue_positions() if tic == MOVER_TIC)
    col, row = ccd_frame(*MOVER_CCD).sky_to_pixel(ra, dec)
    return float(col), float(row)


def mover_sky_position(time_btjd: float) -> tuple[float, float]:
    """RA, Dec (degrees) of the moving source at ``time_btjd``, through its sector-1 CCD's WCS (SkyBoT's answer)."""
    frame = ccd_frame(*MOVER_CCD)
    anchor = _mover_anchor(frame)
    assert anchor is not None
    d_col, d_row = mover_offset_px(time_btjd)
    ra, dec = frame.pixel_to_sky(anchor[0] + float(d_col), anchor[1] + float(d_row))
    return float(ra), float(dec)
