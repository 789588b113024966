"""Deterministic TESS Data Validation (DV) products for the fake MAST: the target catalogue and the generator.

Every number the emulator serves comes from here. Generation is lazy and cached per (TIC, sector range, TCE);
random parts are seeded from the TIC id and sector, so every run (and every process) produces identical values.

Units follow the DV files: times in BTJD (BJD - 2457000, days), fluxes relative (flux/median - 1, dimensionless),
depths in ppm, durations in hours.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SPOC_LC_PATH = DATA_DIR / "tess2018206045859-s0001-0000000025155310-0120-s_lc.fits"

CADENCE_DAYS = 2.0 / 1440.0
BTJD_OFFSET_JD = 2457000.0
# TDB - UTC during 2018: 32.184 s (TT - TAI) + 37 leap seconds. The periodic TDB - TT term (< 2 ms) is ignored, which
# reproduces SPOC's DATE-OBS strings to the millisecond (checked against the real s1 and s2 headers).
TDB_MINUS_UTC_S = 69.184
# Fraction of the elapsed time that is exposure for 2-minute cadences (the real lc header: LIVETIME/TELAPSE).
DEADTIME_CORRECTION = 0.792
SOLAR_RADIUS_IN_EARTH_RADII = 109.076
_BTJD_ZERO = np.datetime64("2014-12-08T12:00:00.000", "ms")  # JD 2457000.0

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------------
# Catalogue types


@dataclass(frozen=True)
class SectorWindow:
    """Time coverage of one sector: start/stop and the mid-sector downlink gap, all in BTJD."""

    sector: int
    start_btjd: float
    stop_btjd: float
    gap_start_btjd: float
    gap_stop_btjd: float
    pxtable: int


# s1 and s2 start/stop are the real TSTART/TSTOP of the SPOC headers (s1: the lc file in tests/data; s2: the WASP-18
# DVT header quoted in upstream-apis.md section 2). s1's gap is the real one in the lc file.
SECTOR_WINDOWS: dict[int, SectorWindow] = {
    1: SectorWindow(1, 1325.293656167129, 1353.176978345185, 1338.5217, 1339.6550, 128),
    2: SectorWindow(2, 1354.105280000743, 1381.518180460247, 1367.15, 1368.59, 129),
    3: SectorWindow(3, 1385.9470, 1406.0020, 1395.48, 1396.60, 130),
}


@dataclass(frozen=True)
class TransitShape:
    """A periodic trapezoidal dip: the DV transit model."""

    period_days: float
    epoch_btjd: float
    depth_ppm: float
    duration_hours: float
    ingress_hours: float

    def phase_days(self, time_btjd: np.ndarray) -> np.ndarray:
        """Time from the nearest mid-transit, in days, in [-P/2, P/2)."""
        half = self.period_days / 2.0
        return np.mod(time_btjd - self.epoch_btjd + half, self.period_days) - half

    def model(self, time_btjd: np.ndarray) -> np.ndarray:
        """Relative flux of the periodic model (0 out of transit, -depth at the bottom)."""
        return trapezoid_dip(self.phase_days(time_btjd), self.depth_ppm, self.duration_hours, self.ingress_hours)

    def single_event(self, time_btjd: np.ndarray) -> np.ndarray:
        """Relative flux of only the transit centred at the epoch (no repeats)."""
        offset_days = time_btjd - self.epoch_btjd
        return trapezoid_dip(offset_days, self.depth_ppm, self.duration_hours, self.ingress_hours)


def trapezoid_dip(offset_days: np.ndarray, depth_ppm: float, duration_hours: float, ingress_hours: float) -> np.ndarray:
    """Trapezoid of total width ``duration_hours`` and ramp ``ingress_hours``, as negative relative flux."""
    half_width_days = duration_hours / 48.0
    ingress_days = max(ingress_hours / 24.0, 1e-9)
    depth = depth_ppm * 1e-6
    fraction = np.clip((half_width_days - np.abs(offset_days)) / ingress_days, 0.0, 1.0)
    # np.where keeps out-of-transit values at +0.0; -depth * 0 would serialise as "-0.0".
    return np.where(fraction > 0.0, -depth * fraction, 0.0)


@dataclass(frozen=True)
class TceSpec:
    """One Threshold Crossing Event of a DV run over a sector range, with its DV Data Header fit values."""

    first_sector: int
    last_sector: int
    number: int
    shape: TransitShape
    snr: float
    max_mes: float
    max_ses: float
    planet_radius_earth: float
    radius_ratio: float
    a_over_rstar: float
    impact: float
    inclination_deg: float
    median_detrender_hours: float

    @property
    def sector_range(self) -> str:
        """The DV run's sector range, e.g. ``s0001-s0003``."""
        return f"s{self.first_sector:04d}-s{self.last_sector:04d}"

    @property
    def name(self) -> str:
        """The extension name, e.g. ``TCE_1``."""
        return f"TCE_{self.number}"

    @property
    def tce_id(self) -> str:
        """The id ExoMAST lists, e.g. ``s0001-s0003:TCE_1``."""
        return f"{self.sector_range}:{self.name}"


@dataclass(frozen=True)
class Star:
    """TIC parameters as they appear in the DV Primary Header."""

    tic_id: int
    ra_deg: float
    dec_deg: float
    pmra_mas_per_yr: float
    pmdec_mas_per_yr: float
    tess_mag: float
    teff_k: float
    logg_cgs: float
    mh_dex: float
    radius_rsun: float
    noise_ppm: float  # per-cadence white noise of the synthetic light curve


@dataclass(frozen=True)
class InjectedSignal:
    """A dip put into a synthetic light curve; ``single_event`` keeps only the transit at the epoch."""

    shape: TransitShape
    single_event: bool = False


@dataclass(frozen=True)
class Target:
    """A star with DV data: its TCEs in the order ExoMAST lists them, and where its flux comes from."""

    star: Star
    tces: tuple[TceSpec, ...]
    flux_source: Literal["synthetic", "spoc"]
    injected: tuple[InjectedSignal, ...] = ()
    # Tests' edge cases: a DV series whose every flux is missing, or one of two cadences.
    degenerate: Literal["all_nan", "two_points"] | None = None

    @property
    def tce_ids(self) -> list[str]:
        """The ``tces`` list, deliberately in catalogue (not sorted) order."""
        return [tce.tce_id for tce in self.tces]


@dataclass(frozen=True)
class DvRun:
    """Per-sector-range pipeline metadata for the primary header."""

    date: str
    dv_version: str
    procver: str
    run_stamp: str
    pipeline_id: int


# s0002-s0002 is the real WASP-18 DVT header (upstream-apis.md section 2); s0001-s0001's run stamp is the real
# "Search = tess2018206190142" of the tcestats CSV. Everything else here is plausible but invented.
DV_RUNS: dict[tuple[int, int], DvRun] = {
    (1, 1): DvRun("2018-09-27", "spoc-3.3.36-20180925", "0b4c1c76a7", "tess2018206190142", 106),
    (2, 2): DvRun("2018-10-06", "spoc-3.3.37-20181001", "813f8ecb93", "tess2018234235059", 109),
    (3, 3): DvRun("2018-11-03", "spoc-3.3.38-20181023", "a6f0a3b6c1", "tess2018263124740", 136),
    (1, 3): DvRun("2018-12-05", "spoc-3.3.40-20181129", "c2d1b7e04f", "tess2018206190142", 179),
}


def _first_epoch_after(reference_epoch_btjd: float, period_days: float, start_btjd: float) -> float:
    """The first transit time at or after ``start_btjd`` of an ephemeris, as DV reports TEPOCH."""
    n = math.ceil((start_btjd - reference_epoch_btjd) / period_days)
    return round(reference_epoch_btjd + n * period_days, 6)


def _build_catalogue() -> dict[int, Target]:
    weird_shape = TransitShape(11.6186, 1334.45, 24447.6, 12.5986, 1.67323)
    # TIC 214568914: the tutorial's "weird" TCE. Fit values are the real tcestats row
    # (upstream-samples/reconstructed/tcestats_s0001-s0001_TIC214568914_row.csv).
    weird = Target(
        star=Star(
            tic_id=214568914,
            ra_deg=340.8004,
            dec_deg=-36.3439,
            pmra_mas_per_yr=2.71,
            pmdec_mas_per_yr=-5.13,
            tess_mag=15.34,
            teff_k=31000.0,
            logg_cgs=5.59998,
            mh_dex=0.0,
            radius_rsun=0.18,
            noise_ppm=6000.0,
        ),
        tces=(
            TceSpec(
                first_sector=1,
                last_sector=1,
                number=1,
                shape=weird_shape,
                snr=49.9271,
                max_mes=49.9271,
                max_ses=68.2709,
                planet_radius_earth=2.99464,
                radius_ratio=0.152395,
                a_over_rstar=8.14613,
                impact=0.000895098,
                inclination_deg=89.9937,
                median_detrender_hours=12.6,
            ),
        ),
        flux_source="synthetic",
        # maxSES > MES: one event carries the detection, so only the first epoch is in the data.
        injected=(InjectedSignal(weird_shape, single_event=True),),
    )

    # TIC 25155310 (WASP-126 b). TEPOCH/TDEPTH were derived once, offline, from the real PDCSAP light curve in
    # tests/data: quality-0 cadences normalised by the median, detrended with a 1-day running median (transits
    # masked), then a box search at P = 3.28880 d with a 3.2 h box over epochs on a 0.0005 d grid, refined on a
    # 0.0002 d grid: best epoch 1327.5204 BTJD (the first transit in the data; 8 transits), box depth 6472 ppm,
    # mean depth of the central 2 h 7037 ppm (used as TDEPTH, the trapezoid's floor), box S/N 135.5.
    # The ratios below follow from TDEPTH, RADIUS = 1.27 Rsun, a circular orbit and M = 1.12 Msun.
    wasp126_shape = TransitShape(3.28880, 1327.5204, 7037.0, 3.2, 0.3)
    wasp126 = Target(
        # Star values are the real lc primary header's; noise_ppm is unused (the flux is the real PDCSAP).
        star=Star(
            tic_id=25155310,
            ra_deg=63.37389,
            dec_deg=-69.226789,
            pmra_mas_per_yr=63.0735,
            pmdec_mas_per_yr=53.6783,
            tess_mag=10.55500031,
            teff_k=5800.0,
            logg_cgs=4.28003979,
            mh_dex=-0.06,
            radius_rsun=1.26999998,
            noise_ppm=1340.0,
        ),
        tces=(
            TceSpec(
                first_sector=1,
                last_sector=1,
                number=1,
                shape=wasp126_shape,
                snr=135.52,
                max_mes=135.52,
                max_ses=47.91,
                planet_radius_earth=11.621,
                radius_ratio=0.083887,
                a_over_rstar=7.6124,
                impact=0.486,
                inclination_deg=86.34,
                median_detrender_hours=24.0,
            ),
        ),
        flux_source="spoc",
    )

    # TIC 100100827 (WASP-18). TCE_1 is WASP-18 b; TCE_2 a secondary-eclipse-like signal half a period later.
    # TEPOCH is the reference ephemeris (1354.4580, the first transit of s2) moved to the first transit of each run.
    p_days = 0.94145
    b_ref = TransitShape(p_days, 1354.4580, 9600.0, 2.2, 0.25)
    secondary_ref = TransitShape(p_days, 1354.4580 + p_days / 2, 350.0, 2.2, 0.25)
    wasp18_radius_rsun = 1.23000002

    def wasp18_b(first: int, last: int, snr: float, radius_earth: float) -> TceSpec:
        epoch = _first_epoch_after(b_ref.epoch_btjd, p_days, SECTOR_WINDOWS[first].start_btjd)
        shape = TransitShape(p_days, epoch, b_ref.depth_ppm, b_ref.duration_hours, b_ref.ingress_hours)
        ratio = round(radius_earth / (wasp18_radius_rsun * SOLAR_RADIUS_IN_EARTH_RADII), 6)
        return TceSpec(
            first_sector=first,
            last_sector=last,
            number=1,
            shape=shape,
            snr=snr,
            max_mes=snr,
            max_ses=281.3,
            planet_radius_earth=radius_earth,
            radius_ratio=ratio,
            a_over_rstar=3.5623,
            impact=0.3584,
            inclination_deg=84.23,
            median_detrender_hours=5.5,
        )

    def wasp18_secondary(first: int, last: int, snr: float) -> TceSpec:
        epoch = _first_epoch_after(secondary_ref.epoch_btjd, p_days, SECTOR_WINDOWS[first].start_btjd)
        shape = TransitShape(p_days, epoch, secondary_ref.depth_ppm, 2.2, 0.25)
        return TceSpec(
            first_sector=first,
            last_sector=last,
            number=2,
            shape=shape,
            snr=snr,
            max_mes=snr,
            max_ses=10.3,
            planet_radius_earth=2.5102,
            radius_ratio=0.018709,
            a_over_rstar=3.9011,
            impact=0.0512,
            inclination_deg=89.25,
            median_detrender_hours=5.5,
        )

    wasp18 = Target(
        star=Star(
            tic_id=100100827,
            ra_deg=24.354314,
            dec_deg=-45.677896,
            pmra_mas_per_yr=25.4635,
            pmdec_mas_per_yr=20.3909,
            tess_mag=8.83300018,
            teff_k=6400.0,
            logg_cgs=4.36582994,
            mh_dex=0.1,
            radius_rsun=wasp18_radius_rsun,
            noise_ppm=280.0,
        ),
        # The order of the real docs' example: not sorted by range or by TCE number.
        tces=(
            wasp18_b(1, 3, 2431.6, 12.97984),
            wasp18_b(2, 2, 1429.8, 12.97791),
            wasp18_b(1, 1, 1474.9, 12.97791),
            wasp18_b(3, 3, 1247.2, 12.97791),
            wasp18_secondary(1, 3, 88.6),
            wasp18_secondary(2, 2, 52.1),
        ),
        flux_source="synthetic",
        injected=(InjectedSignal(b_ref), InjectedSignal(secondary_ref)),
    )
    from .verdict_scenes import scene_targets  # imported here: the scenes are built from this module's types

    return {target.star.tic_id: target for target in (weird, wasp126, wasp18, *scene_targets())}


CATALOGUE: dict[int, Target] = _build_catalogue()


# ---------------------------------------------------------------------------------------------------------------
# Time stamps and per-sector flux


@dataclass(frozen=True)
class Cadences:
    """Time stamps of one sector (rows with a NaN TIME already removed)."""

    time_btjd: np.ndarray
    timecorr_days: np.ndarray
    cadenceno: np.ndarray
    quality: np.ndarray


@dataclass(frozen=True)
class SpocLightCurve:
    """The columns of the real SPOC light curve this emulator reuses (finite TIME rows only)."""

    cadences: Cadences
    pdcsap_flux: np.ndarray
    pdcsap_flux_err: np.ndarray


_spoc_lock = threading.Lock()
_spoc_cache: list[SpocLightCurve] = []


def load_spoc_light_curve() -> SpocLightCurve:
    """Read (once per process, thread-safely) the real sector-1 light curve of TIC 25155310."""
    with _spoc_lock:
        if not _spoc_cache:
            # Imported here so that starting the emulator does not pay for astropy until DV data is needed.
            from astropy.io import fits

            with fits.open(SPOC_LC_PATH, memmap=False) as hdul:
                data = hdul["LIGHTCURVE"].data
                time_btjd = np.asarray(data["TIME"], dtype=np.float64)
                keep = np.isfinite(time_btjd)
                cadences = Cadences(
                    time_btjd=time_btjd[keep],
                    timecorr_days=np.asarray(data["TIMECORR"], dtype=np.float64)[keep],
                    cadenceno=np.asarray(data["CADENCENO"], dtype=np.int64)[keep],
                    quality=np.asarray(data["QUALITY"], dtype=np.int64)[keep],
                )
                _spoc_cache.append(
                    SpocLightCurve(
                        cadences=cadences,
                        pdcsap_flux=np.asarray(data["PDCSAP_FLUX"], dtype=np.float64)[keep],
                        pdcsap_flux_err=np.asarray(data["PDCSAP_FLUX_ERR"], dtype=np.float64)[keep],
                    )
                )
        return _spoc_cache[0]


def barycentric_correction_days(time_btjd: np.ndarray, ra_deg: float, dec_deg: float) -> np.ndarray:
    """Approximate TIMECORR (Roemer delay for a circular Earth orbit); within ~1 s of SPOC's for sector 1."""
    obliquity = math.radians(23.4393)
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    x, y, z = math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)
    y_ecl = y * math.cos(obliquity) + z * math.sin(obliquity)
    z_ecl = -y * math.sin(obliquity) + z * math.cos(obliquity)
    star_longitude, star_latitude = math.atan2(y_ecl, x), math.asin(z_ecl)
    sun_longitude = np.radians(280.460 + 0.9856474 * (time_btjd + BTJD_OFFSET_JD - 2451545.0))
    light_time_au_days = 499.004786 / 86400.0
    return light_time_au_days * math.cos(star_latitude) * np.cos(sun_longitude + math.pi - star_longitude)


def sector_cadences(star: Star, sector: int) -> Cadences:
    """Time stamps of a sector: the real ones for sector 1, evenly spaced 2-min cadences otherwise."""
    if sector == 1:
        return load_spoc_light_curve().cadences
    window = SECTOR_WINDOWS[sector]
    n_cadences = int((window.stop_btjd - window.start_btjd) / CADENCE_DAYS)
    # Cadences are evenly spaced on the spacecraft clock; TIME is that plus the barycentric correction.
    spacecraft_btjd = window.start_btjd + CADENCE_DAYS * (np.arange(n_cadences) + 0.5)
    spacecraft_btjd = spacecraft_btjd[
        (spacecraft_btjd < window.gap_start_btjd) | (spacecraft_btjd >= window.gap_stop_btjd)
    ]
    timecorr_days = barycentric_correction_days(spacecraft_btjd, star.ra_deg, star.dec_deg)
    time_btjd = spacecraft_btjd + timecorr_days
    # Cadence numbers count 2-min ticks of the spacecraft clock, so they continue from sector 1's first cadence.
    first = load_spoc_light_curve().cadences
    cadenceno = first.cadenceno[0] + np.rint((time_btjd - first.time_btjd[0]) / CADENCE_DAYS).astype(np.int64)

    rng = np.random.default_rng([star.tic_id, sector, 1])
    quality = np.zeros(time_btjd.size, dtype=np.int64)
    quality[rng.random(time_btjd.size) < 0.01] = 1024  # scattered cosmic-ray / impulsive-outlier flags
    # Momentum dumps every 2.5 d flag a short run of cadences (bit 32 reaction-wheel desaturation, plus 128).
    for dump_btjd in np.arange(window.start_btjd + 1.25, window.stop_btjd, 2.5):
        quality[np.abs(time_btjd - dump_btjd) < 8 * CADENCE_DAYS] |= 32 | 128
    return Cadences(
        time_btjd=time_btjd,
        timecorr_days=timecorr_days,
        cadenceno=cadenceno,
        quality=quality,
    )


@dataclass(frozen=True)
class SectorFlux:
    """One sector of a star: time stamps, relative flux, its sigma and the systematic trend (NaN = missing)."""

    cadences: Cadences
    lc_init: np.ndarray
    lc_init_err: np.ndarray
    trend: np.ndarray


def _orbit_segments(window: SectorWindow, time_btjd: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the two spacecraft orbits of a sector (split at the downlink gap)."""
    before_gap = time_btjd < window.gap_start_btjd
    return [before_gap, ~before_gap]


def synthetic_sector_flux(target: Target, sector: int) -> SectorFlux:
    """Trend + injected dips + white noise for one sector, seeded by (TIC, sector)."""
    star = target.star
    cadences = sector_cadences(star, sector)
    time_btjd = cadences.time_btjd
    rng = np.random.default_rng([star.tic_id, sector, 2])
    sigma = star.noise_ppm * 1e-6

    # Systematics: a gentle quadratic per orbit plus a thermal ramp settling after each data gap.
    trend = np.zeros(time_btjd.size)
    for segment in _orbit_segments(SECTOR_WINDOWS[sector], time_btjd):
        t_seg = time_btjd[segment]
        if t_seg.size == 0:
            continue
        x = 2.0 * (t_seg - t_seg[0]) / max(t_seg[-1] - t_seg[0], 1e-9) - 1.0
        c1, c2 = rng.normal(0.0, 1.5e-4, size=2)
        ramp_amplitude = rng.uniform(3e-4, 8e-4) * rng.choice([-1.0, 1.0])
        ramp_tau_days = rng.uniform(0.2, 0.6)
        trend[segment] = (
            c1 * x + c2 * (x * x - 1.0 / 3.0) + ramp_amplitude * np.exp(-(t_seg - t_seg[0]) / ramp_tau_days)
        )
    trend -= np.median(trend)

    signal = np.zeros(time_btjd.size)
    for injected in target.injected:
        signal += injected.shape.single_event(time_btjd) if injected.single_event else injected.shape.model(time_btjd)

    lc_init_err = sigma * (1.0 + 0.02 * rng.standard_normal(time_btjd.size))
    lc_init = trend + signal + lc_init_err * rng.standard_normal(time_btjd.size)
    return SectorFlux(cadences, lc_init, lc_init_err, trend)


def running_median(
    time_btjd: np.ndarray, values: np.ndarray, window_days: float, *, knot_spacing_days: float = 0.02
) -> np.ndarray:
    """NaN-aware running median over ``window_days``, evaluated on a knot grid and interpolated to every time."""
    good = np.isfinite(values)
    t_good, v_good = time_btjd[good], values[good]
    knots = np.arange(time_btjd.min(), time_btjd.max() + knot_spacing_days, knot_spacing_days)
    lo = np.searchsorted(t_good, knots - window_days / 2)
    hi = np.searchsorted(t_good, knots + window_days / 2)
    # A window needs a reasonable number of points, or the median is noise (e.g. inside the downlink gap).
    min_points = 30
    medians = np.array([np.median(v_good[a:b]) if b - a >= min_points else np.nan for a, b in zip(lo, hi, strict=True)])
    usable = np.isfinite(medians)
    return np.asarray(np.interp(time_btjd, knots[usable], medians[usable]), dtype=np.float64)


def spoc_sector_flux(target: Target) -> SectorFlux:
    """Relative PDCSAP flux of the real sector-1 light curve, detrended with a 1-day running median."""
    spoc = load_spoc_light_curve()
    cadences = spoc.cadences
    median_flux = np.nanmedian(spoc.pdcsap_flux[cadences.quality == 0])
    lc_init = spoc.pdcsap_flux / median_flux - 1.0
    lc_init_err = spoc.pdcsap_flux_err / median_flux
    usable = np.isfinite(lc_init) & (cadences.quality == 0)
    # Transits are masked so the running median follows the star, not the planet (DV does the same).
    for tce in target.tces:
        usable &= np.abs(tce.shape.phase_days(cadences.time_btjd)) > 0.75 * tce.shape.duration_hours / 24.0
    trend = running_median(cadences.time_btjd, np.where(usable, lc_init, np.nan), window_days=1.0)
    return SectorFlux(cadences, lc_init, lc_init_err, trend)


# ---------------------------------------------------------------------------------------------------------------
# The DV table and its headers


COLUMN_NAMES: tuple[str, ...] = (
    "TICID", "EXTNAME", "TIME", "TIMECORR", "CADENCENO", "PHASE", "LC_INIT", "LC_INIT_ERR", "LC_WHITE",
    "LC_DETREND", "MODEL_INIT", "MODEL_WHITE", "DATE_OBS", "TESSDatetime", "SECTORS",
)  # fmt: skip


@dataclass(frozen=True)
class DvTable:
    """One TCE's DV time series (a ``TCE_n`` extension) plus the two headers ExoMAST serves with it."""

    target: Target
    tce: TceSpec
    columns: dict[str, np.ndarray]  # numeric columns, NaN = missing; DATE_OBS/TESSDatetime as str arrays
    primary_header: dict[str, object]
    data_header: dict[str, object]

    @property
    def n_rows(self) -> int:
        """Number of cadences (rows)."""
        return int(self.columns["TIME"].size)


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """Round to ``digits`` significant digits so that the shortest float repr has at most that many."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
    magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
    # Dividing an integer-valued float by an exact power of ten yields the double nearest the decimal, whose
    # shortest repr is that decimal; powers of ten are exact only up to 1e22, hence the clip.
    decimals = np.clip(digits - 1 - magnitude, 0, 22)
    scale = 10.0**decimals
    return np.asarray(np.rint(values * scale) / scale, dtype=np.float64)


def utc_strings(time_btjd: np.ndarray, timecorr_days: np.ndarray) -> np.ndarray:
    """UTC ISO strings (ms precision, ``T`` separator) of the spacecraft-frame instant of each cadence."""
    spacecraft_btjd = time_btjd - timecorr_days
    milliseconds = np.rint(spacecraft_btjd * 86_400_000.0 - TDB_MINUS_UTC_S * 1000.0).astype(np.int64)
    return np.asarray(np.datetime_as_string(_BTJD_ZERO + milliseconds.astype("timedelta64[ms]"), unit="ms"))


def btjd_to_utc_iso(time_btjd: float) -> str:
    """A header-style UTC date (``2018-07-25T19:01:42.709Z``) for a TDB instant in BTJD."""
    return str(utc_strings(np.array([time_btjd]), np.zeros(1))[0]) + "Z"


def fits_checksum_like(*parts: object) -> str:
    """A deterministic 16-character stand-in for a FITS CHECKSUM card value."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:16])


def _primary_header(target: Target, tce: TceSpec) -> dict[str, object]:
    star = target.star
    first, last = SECTOR_WINDOWS[tce.first_sector], SECTOR_WINDOWS[tce.last_sector]
    run = DV_RUNS[(tce.first_sector, tce.last_sector)]
    n_tces = sum(1 for t in target.tces if (t.first_sector, t.last_sector) == (tce.first_sector, tce.last_sector))
    sector_bits = "".join("1" if tce.first_sector <= s <= tce.last_sector else "0" for s in range(1, 18))
    return {
        "SIMPLE": True,
        "BITPIX": 8,
        "NAXIS": 0,
        "EXTEND": True,
        "NEXTEND": n_tces + 2,  # one extension per TCE plus Statistics, counted the way the real files do
        "EXTNAME": "PRIMARY",
        "EXTVER": 1,
        "SIMDATA": False,
        "ORIGIN": "NASA/Ames",
        "DATE": run.date,
        "TSTART": first.start_btjd,
        "TSTOP": last.stop_btjd,
        "DATE-OBS": btjd_to_utc_iso(first.start_btjd),
        "DATE-END": btjd_to_utc_iso(last.stop_btjd),
        "CREATOR": "4764 DvTimeSeriesExporter",
        "PROCVER": run.procver,
        "FILEVER": "1.0",
        "TIMVERSN": "OGIP/93-003",
        "TELESCOP": "TESS",
        "INSTRUME": "TESS Photometer",
        "DATA_REL": tce.last_sector,
        "OBJECT": f"TIC {star.tic_id}",
        "TICID": star.tic_id,
        "SECTOR": tce.last_sector,
        "PXTABLE": last.pxtable,
        "RESFILE": (f"{run.run_stamp}-{tce.sector_range}-{star.tic_id:016d}-{run.pipeline_id:05d}_dvt.fits.gz"),
        "DVVERSN": run.dv_version,
        "NUMTCES": n_tces,
        "SECTORS": sector_bits,
        "RADESYS": "ICRS",
        "RA_OBJ": star.ra_deg,
        "DEC_OBJ": star.dec_deg,
        "EQUINOX": 2000.0,
        "PMRA": star.pmra_mas_per_yr,
        "PMDEC": star.pmdec_mas_per_yr,
        "PMTOTAL": round(math.hypot(star.pmra_mas_per_yr, star.pmdec_mas_per_yr), 8),
        "TESSMAG": star.tess_mag,
        "TEFF": star.teff_k,
        "LOGG": star.logg_cgs,
        "MH": star.mh_dex,
        "RADIUS": star.radius_rsun,
        "TICVER": 7,
        "CHECKSUM": fits_checksum_like("primary", star.tic_id, tce.sector_range),
    }


def _count_observed_transits(tce: TceSpec, time_btjd: np.ndarray, valid: np.ndarray) -> int:
    """Number of distinct epochs with at least one valid in-transit cadence (the header's NTRANS)."""
    in_transit = valid & (np.abs(tce.shape.phase_days(time_btjd)) < tce.shape.duration_hours / 48.0)
    epochs = np.rint((time_btjd[in_transit] - tce.shape.epoch_btjd) / tce.shape.period_days)
    return int(np.unique(epochs).size)


def _data_header(
    target: Target, tce: TceSpec, time_btjd: np.ndarray, timecorr_days: np.ndarray, valid: np.ndarray
) -> dict[str, object]:
    star = target.star
    # Like SPOC's TSTART/TSTOP: edges of the first/last cadence on the spacecraft clock (TIME minus TIMECORR).
    tstart = float(time_btjd[0] - timecorr_days[0] - CADENCE_DAYS / 2)
    tstop = float(time_btjd[-1] - timecorr_days[-1] + CADENCE_DAYS / 2)
    telapse = tstop - tstart
    shape = tce.shape
    return {
        "XTENSION": "BINTABLE",
        "BITPIX": 8,
        "NAXIS": 2,
        "NAXIS1": 44,  # bytes per row of the 10 DVT columns: D, E, J and 7 x E
        "NAXIS2": int(time_btjd.size),
        "PCOUNT": 0,
        "GCOUNT": 1,
        "TFIELDS": 10,
        "EXTNAME": tce.name,
        "EXTVER": 1,
        "TELESCOP": "TESS",
        "INSTRUME": "TESS Photometer",
        "OBJECT": f"TIC {star.tic_id}",
        "TICID": star.tic_id,
        "RA_OBJ": star.ra_deg,
        "DEC_OBJ": star.dec_deg,
        "TIMEREF": "SOLARSYSTEM",
        "TASSIGN": "SPACECRAFT",
        "TIMESYS": "TDB",
        "BJDREFI": 2457000,
        "BJDREFF": 0.0,
        "TIMEUNIT": "d",
        "TELAPSE": round(telapse, 9),
        "LIVETIME": round(telapse * DEADTIME_CORRECTION, 9),
        "TSTART": round(tstart, 9),
        "TSTOP": round(tstop, 9),
        "DATE-OBS": btjd_to_utc_iso(tstart),
        "DATE-END": btjd_to_utc_iso(tstop),
        "TIMEDEL": CADENCE_DAYS,
        "TPERIOD": shape.period_days,
        "TEPOCH": shape.epoch_btjd,
        "TDEPTH": shape.depth_ppm,
        "TSNR": tce.snr,
        "TDUR": shape.duration_hours,
        "INDUR": shape.ingress_hours,
        "IMPACT": tce.impact,
        "INCLIN": tce.inclination_deg,
        "DRRATIO": tce.a_over_rstar,
        "RADRATIO": tce.radius_ratio,
        "PRADIUS": tce.planet_radius_earth,
        "MAXMES": tce.max_mes,
        "MAXSES": tce.max_ses,
        "MEDDETR": tce.median_detrender_hours,
        "NTRANS": _count_observed_transits(tce, time_btjd, valid),
        "CHECKSUM": fits_checksum_like("data", star.tic_id, tce.tce_id),
    }


# ---------------------------------------------------------------------------------------------------------------
# The archive


class KeyedMemo:
    """A thread-safe memo: each key is computed once, concurrent callers of the same key wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._values: dict[Hashable, object] = {}

    def get(self, key: Hashable, factory: Callable[[], T]) -> T:
        """The cached value of ``key``, computing it with ``factory`` the first time."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                self._values[key] = factory()
            return self._values[key]  # type: ignore[return-value]


class DvArchive:
    """The DV products of the catalogue, generated on first use and cached in memory."""

    def __init__(self, catalogue: dict[int, Target] | None = None) -> None:
        self._catalogue = CATALOGUE if catalogue is None else catalogue
        self._sectors = KeyedMemo()
        self._tables = KeyedMemo()

    def target(self, tic_id: int) -> Target | None:
        """The catalogue entry for a TIC id, or None when it has no DV data."""
        return self._catalogue.get(tic_id)

    def find_tce(self, tic_id: int, first_sector: int, last_sector: int, number: int) -> TceSpec | None:
        """The TCE with this number in this sector range, or None."""
        target = self.target(tic_id)
        if target is None:
            return None
        for tce in target.tces:
            if (tce.first_sector, tce.last_sector, tce.number) == (first_sector, last_sector, number):
                return tce
        return None

    def table(self, tic_id: int, first_sector: int, last_sector: int, number: int) -> DvTable:
        """The DV time series of one TCE (KeyError if there is no such TCE)."""
        tce = self.find_tce(tic_id, first_sector, last_sector, number)
        if tce is None:
            raise KeyError((tic_id, first_sector, last_sector, number))
        target = self._catalogue[tic_id]
        return self._tables.get((tic_id, tce.tce_id), lambda: self._build_table(target, tce))

    def _sector_flux(self, target: Target, sector: int) -> SectorFlux:
        def build() -> SectorFlux:
            if target.flux_source == "spoc":
                if sector != 1:
                    raise ValueError("real SPOC flux exists only for sector 1")
                return spoc_sector_flux(target)
            return synthetic_sector_flux(target, sector)

        return self._sectors.get((target.star.tic_id, sector), build)

    def _build_table(self, target: Target, tce: TceSpec) -> DvTable:
        parts = [self._sector_flux(target, s) for s in range(tce.first_sector, tce.last_sector + 1)]
        time_btjd = np.concatenate([p.cadences.time_btjd for p in parts])
        timecorr_days = np.concatenate([p.cadences.timecorr_days for p in parts])
        cadenceno = np.concatenate([p.cadences.cadenceno for p in parts])
        quality = np.concatenate([p.cadences.quality for p in parts])
        lc_init = np.concatenate([p.lc_init for p in parts])
        lc_init_err = np.concatenate([p.lc_init_err for p in parts])
        trend = np.concatenate([p.trend for p in parts])

        valid = (quality == 0) & np.isfinite(lc_init) & np.isfinite(lc_init_err)
        # DV searches for TCE_n after removing the transits of TCE_1..n-1, so those cadences are gapped here.
        for other in target.tces:
            if (other.first_sector, other.last_sector) == (tce.first_sector, tce.last_sector) and (
                other.number < tce.number
            ):
                valid &= np.abs(other.shape.phase_days(time_btjd)) > 0.75 * other.shape.duration_hours / 24.0

        lc_init = np.where(valid, lc_init, np.nan)
        lc_init_err = np.where(valid, lc_init_err, np.nan)
        lc_detrend = lc_init - trend
        model_init = tce.shape.model(time_btjd)
        with np.errstate(invalid="ignore", divide="ignore"):
            lc_white = lc_detrend / lc_init_err
            model_white = model_init / lc_init_err

        iso = utc_strings(time_btjd, timecorr_days)
        columns = {
            "TIME": np.round(time_btjd, 7),
            "TIMECORR": round_significant(timecorr_days, 7),
            "CADENCENO": cadenceno,
            "PHASE": np.round(tce.shape.phase_days(time_btjd), 7),
            "LC_INIT": round_significant(lc_init, 8),
            "LC_INIT_ERR": round_significant(lc_init_err, 6),
            "LC_WHITE": round_significant(lc_white, 8),
            "LC_DETREND": round_significant(lc_detrend, 8),
            "MODEL_INIT": round_significant(model_init, 8),
            "MODEL_WHITE": round_significant(model_white, 8),
            "DATE_OBS": np.char.replace(iso, "T", " "),
            "TESSDatetime": iso,
        }
        if target.degenerate == "all_nan":
            for name in ("LC_INIT", "LC_INIT_ERR", "LC_WHITE", "LC_DETREND"):
                columns[name] = np.full(time_btjd.size, np.nan)
        elif target.degenerate == "two_points":
            columns = {name: values[:2] for name, values in columns.items()}
        return DvTable(
            target=target,
            tce=tce,
            columns=columns,
            primary_header=_primary_header(target, tce),
            data_header=_data_header(target, tce, time_btjd, timecorr_days, valid),
        )


_default_archive = DvArchive()


def default_archive() -> DvArchive:
    """The process-wide archive; the data are immutable, so every emulator instance can share one cache."""
    return _default_archive
