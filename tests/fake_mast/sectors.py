"""FFI time stamps of every TESS sector, as a TESScut cutout's PIXELS rows carry them.

- Sector 1 is real: the 1282 FFI mid-times, barycentric corrections, quality flags and file names of the 2018
  TESScut zip in tests/data (camera 4, CCD 3). The spacecraft-clock instants (TIME - TIMECORR) are kept and TIME is
  recomputed for the CCD being cut, because SPOC corrects each FFI to its CCD's centre.
- Sectors 2 and 3 start, stop and pause where the emulator's DV data says they do (``targets.SECTOR_WINDOWS``).
- Any other sector starts 27.4 d after the previous one (counting from sector 1), lasts 26.6 d and pauses for a 1-day
  downlink in the middle. Sector 33 is stretched to exactly 3495 frames, the count of the real sector-33 cutouts in
  the astroquery docs.
- Cadence: 30 min up to sector 26, 10 min for sectors 27-55, 200 s from sector 56 on.
- QUALITY: bit 32 (reaction-wheel desaturation) on the frame of each momentum dump, every 2.5 d (sector 1: the real
  flags); bit 2048 (stray light) on the frames of the first two hours of each orbit.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .targets import DATA_DIR, SECTOR_WINDOWS, TDB_MINUS_UTC_S, barycentric_correction_days

SECTOR1_ZIP_PATH = DATA_DIR / "astrocut_107.27_-70.0_5x5.zip"
SECTOR1_START_BTJD = 1325.313100604524  # TSTART of the first sector-1 FFI (real header)
SECTOR_SPACING_DAYS = 27.4
SECTOR_LENGTH_DAYS = 26.6
DOWNLINK_GAP_DAYS = 1.0
EXACT_FRAME_COUNTS = {33: 3495}
# TSTOP - TSTART of one FFI over its cadence, from the real sector-1 file (the rest is readout and dead time).
EXPOSURE_SPAN_FRACTION = 2 * 0.009958487 / (30.0 / 1440.0)
MOMENTUM_DUMP_DAYS = 2.5
STRAY_LIGHT_DAYS = 2.0 / 24.0

QUALITY_DESAT = 32
QUALITY_STRAY_LIGHT = 2048

_BTJD_ZERO = np.datetime64("2014-12-08T12:00:00.000", "ms")  # JD 2457000.0 (TDB)


def cadence_days(sector: int) -> float:
    """FFI cadence of a sector, in days."""
    if sector <= 26:
        return 30.0 / 1440.0
    if sector <= 55:
        return 10.0 / 1440.0
    return 200.0 / 86400.0


def spacecraft_id(sector: int) -> int:
    """The configuration id in FFI file names: 0120 in year 1 (real names), 0205 afterwards (a guess)."""
    return 120 if sector <= 13 else 205


@dataclass(frozen=True)
class SectorFrames:
    """The FFIs of one sector on the spacecraft clock; :meth:`for_ccd` adds a CCD's barycentric correction."""

    sector: int
    cadence_days: float
    spacecraft_mid_btjd: np.ndarray  # mid-exposure, TIME - TIMECORR
    half_span_days: float  # half of TSTOP - TSTART of one FFI
    quality: np.ndarray  # int32
    ffi_stamps: tuple[str, ...]  # 'YYYYDDDHHMMSS' (UTC start of each FFI), as in the FFI file names
    orbit_starts_btjd: tuple[float, ...]

    @property
    def n_frames(self) -> int:
        """Number of FFIs."""
        return int(self.spacecraft_mid_btjd.size)

    def for_ccd(self, ra_centre_deg: float, dec_centre_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """(TIME, TIMECORR) in BTJD and days for a CCD whose centre is at the given position."""
        timecorr = barycentric_correction_days(self.spacecraft_mid_btjd, ra_centre_deg, dec_centre_deg)
        return self.spacecraft_mid_btjd + timecorr, timecorr

    def ffi_names(self, camera: int, ccd: int) -> list[str]:
        """FFI_FILE values, e.g. ``tess2018206192942-s0001-1-2-0120-s_ffi``."""
        suffix = f"-s{self.sector:04d}-{camera}-{ccd}-{spacecraft_id(self.sector):04d}-s_ffi"
        return [f"tess{stamp}{suffix}" for stamp in self.ffi_stamps]


def btjd_to_utc_stamps(time_btjd: np.ndarray) -> list[str]:
    """``YYYYDDDHHMMSS`` UTC stamps of BTJD (TDB) instants (TDB - UTC = 69.184 s since 2017)."""
    milliseconds = np.rint(time_btjd * 86_400_000.0 - TDB_MINUS_UTC_S * 1000.0).astype(np.int64)
    instants = _BTJD_ZERO + milliseconds.astype("timedelta64[ms]")
    years = instants.astype("datetime64[Y]")
    day_of_year = (instants.astype("datetime64[D]") - years.astype("datetime64[D]")).astype(np.int64) + 1
    seconds_of_day = (instants - instants.astype("datetime64[D]")).astype("timedelta64[s]").astype(np.int64)
    year_numbers = years.astype(np.int64) + 1970
    return [
        f"{y:04d}{d:03d}{s // 3600:02d}{s % 3600 // 60:02d}{s % 60:02d}"
        for y, d, s in zip(year_numbers.tolist(), day_of_year.tolist(), seconds_of_day.tolist(), strict=True)
    ]


def _stray_light(mid: np.ndarray, orbit_starts: tuple[float, ...]) -> np.ndarray:
    flags = np.zeros(mid.size, dtype=bool)
    for start in orbit_starts:
        flags |= (mid >= start) & (mid < start + STRAY_LIGHT_DAYS)
    return flags


def _sector1_frames() -> SectorFrames:
    from astropy.io import fits

    with zipfile.ZipFile(SECTOR1_ZIP_PATH) as archive:
        payload = archive.read(archive.namelist()[0])
    with fits.open(io.BytesIO(payload)) as hdul:
        data = hdul["PIXELS"].data
        time = np.asarray(data["TIME"], dtype=np.float64)
        timecorr = np.asarray(data["TIMECORR"], dtype=np.float64)
        quality = np.asarray(data["QUALITY"], dtype=np.int32)
        names = [str(name) for name in data["FFI_FILE"]]
        half_span = float(time[0] - hdul[0].header["TSTART"])
    mid = time - timecorr
    gap = int(np.argmax(np.diff(mid))) + 1
    orbit_starts = (float(mid[0] - half_span), float(mid[gap] - half_span))
    quality = quality | np.where(_stray_light(mid, orbit_starts), QUALITY_STRAY_LIGHT, 0).astype(np.int32)
    return SectorFrames(
        sector=1,
        cadence_days=30.0 / 1440.0,
        spacecraft_mid_btjd=mid,
        half_span_days=half_span,
        quality=quality,
        ffi_stamps=tuple(name[4:17] for name in names),
        orbit_starts_btjd=orbit_starts,
    )


def _schedule(sector: int) -> tuple[float, float, float, float]:
    """(start, gap start, gap stop, stop) in BTJD."""
    if sector in SECTOR_WINDOWS:
        window = SECTOR_WINDOWS[sector]
        return window.start_btjd, window.gap_start_btjd, window.gap_stop_btjd, window.stop_btjd
    start = SECTOR1_START_BTJD + SECTOR_SPACING_DAYS * (sector - 1)
    cadence = cadence_days(sector)
    if sector in EXACT_FRAME_COUNTS:
        count = EXACT_FRAME_COUNTS[sector]
        first_orbit, second_orbit = count - count // 2, count // 2
        gap_start = start + first_orbit * cadence
        gap_stop = gap_start + DOWNLINK_GAP_DAYS
        return start, gap_start, gap_stop, gap_stop + second_orbit * cadence
    middle = start + SECTOR_LENGTH_DAYS / 2
    return start, middle - DOWNLINK_GAP_DAYS / 2, middle + DOWNLINK_GAP_DAYS / 2, start + SECTOR_LENGTH_DAYS


def _synthetic_frames(sector: int) -> SectorFrames:
    start, gap_start, gap_stop, stop = _schedule(sector)
    cadence = cadence_days(sector)
    # A tiny tolerance keeps exact-count sectors from losing their last frame to rounding.
    first = np.arange(math.floor((gap_start - start) / cadence + 1e-6))
    second = np.arange(math.floor((stop - gap_stop) / cadence + 1e-6))
    begins = np.concatenate([start + first * cadence, gap_stop + second * cadence])
    half_span = cadence * EXPOSURE_SPAN_FRACTION / 2
    mid = begins + half_span
    quality = np.zeros(mid.size, dtype=np.int32)
    for dump in np.arange(start + MOMENTUM_DUMP_DAYS / 2, stop, MOMENTUM_DUMP_DAYS):
        holding = np.nonzero((begins <= dump) & (dump < begins + cadence))[0]
        quality[holding] |= QUALITY_DESAT
    orbit_starts = (start, gap_stop)
    quality |= np.where(_stray_light(mid, orbit_starts), QUALITY_STRAY_LIGHT, 0).astype(np.int32)
    return SectorFrames(
        sector=sector,
        cadence_days=cadence,
        spacecraft_mid_btjd=mid,
        half_span_days=half_span,
        quality=quality,
        ffi_stamps=tuple(btjd_to_utc_stamps(begins)),
        orbit_starts_btjd=orbit_starts,
    )


@lru_cache(maxsize=64)
def sector_frames(sector: int) -> SectorFrames:
    """The FFIs of a sector (cached per process; sector 1 reads the real file once)."""
    if sector < 1:
        raise ValueError(f"no sector {sector}")
    return _sector1_frames() if sector == 1 else _synthetic_frames(sector)
