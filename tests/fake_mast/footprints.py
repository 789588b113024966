"""Which TESS sector, camera and CCD see a sky position: a simplified, deterministic footprint model.

The geometric model
-------------------
- Only the year-1 southern sectors 1–13 are modelled, plus sector 33 (year 3, 10-minute FFIs), which repeats the
  pointing of sector 7 (two years, 26 sectors, earlier). No other sector observes anything, so every northern
  position (e.g. RA 10°, Dec +40°) and the ecliptic plane are on no detector at all.
- Sector ``s`` points the four cameras along the ecliptic meridian ``λ_s = 315.8° + (s − 1)·360°/13``, at ecliptic
  latitudes −18°, −42°, −66° and −90° (cameras 1–4; sector 1's real boresights are at λ = 315.8° and exactly these
  latitudes). Ecliptic coordinates use the J2000 mean obliquity.
- Each camera is a gnomonic (TAN) projection around its boresight. In the camera plane ``v`` runs along the meridian
  towards camera 1 (ecliptic north) and ``u`` completes a right-handed, un-mirrored sky image; cameras 3 and 4 are
  rotated by 180°, as on the real spacecraft.
- A camera holds four 2048 × 2048-pixel CCDs of 21″ pixels, one per quadrant, separated by an 8-pixel gap:
  CCD 1 (u > 0, v < 0), CCD 2 (u < 0, v < 0), CCD 3 (u < 0, v > 0), CCD 4 (u > 0, v > 0). Each CCD is the quadrant
  square rotated by a multiple of 90°, so all CCDs show the sky with the same parity. CCD pixel (col, row) are
  0-based science-pixel indices, pixel centres at integers; the real FFI adds 44 leading collateral columns, which
  only the physical (RAWX) WCS keywords of a cutout reflect.

This reproduces every sector-1 fact on record: TIC 214568914 → camera 1 CCD 2, TIC 206462606 → 1/3,
TIC 206544316 → 3/1 (MIT target list), WASP-126 → 4/1 (SPOC light curve), (107.27, −70.0) → 4/3 (the 2018 TESScut
zip); and, with no tuning beyond the layout above, exactly the six sectors of the recorded ``sector`` response for
Pi Men (84.29119, −80.46912): 1/4/2, 4/4/3, 8/4/4, 11/4/1, 12/3/4, 13/3/3.

Known positions (a small table that wins over the geometry)
------------------------------------------------------------
Within :data:`KNOWN_POSITION_RADIUS_DEG` (3″) of an entry of :data:`KNOWN_POSITIONS` the entry's sector list is the
whole answer:

- (107.27, −70.0): 1/4/3 only. The real 2018 zip was recorded when only sector 1 existed, and the emulator serves it
  for sector 1 and for "all sectors"; the geometry alone would add 2–13 and 33.
- WASP-18 (24.354314, −45.677896): 1/2/2, 2/2/2, 3/2/1. The emulator's DV archive has WASP-18 TCEs in sectors 1–3;
  the geometry (like the real sky) has it in sectors 2 and 3 only.

Where an entry disagrees with the geometry (WASP-18 in sector 1), cutouts use a local frame: a TAN projection
centred on the entry's position with the camera's orientation there, the position placed at pixel
:data:`LOCAL_FRAME_PIXEL` of that CCD. Everything else comes from the geometry, e.g. WASP-126: sectors 1–13 on
camera 4 (1/4/1 first) and 33/4/3; TIC 214568914: sector 1 only (1/1/2); TIC 206544316: 1/3/1 and 2/3/2; the
northern TIC 1000000001 (10, +40): nothing.

Two CCDs at once
----------------
:data:`TWO_CCD_POSITION` (RA 330.944, Dec −30.9879) lies on sector 1, camera 1, CCD 3 at (col 2.3, row 1000.3),
2.3 px from the edge that faces CCD 2 across the gap (in CCD 2's frame it is at row −11.3). The ``sector`` endpoint
with radius 0 lists only 1/1/3; a cutout 23 px or more tall (e.g. 25 × 25) reaches CCD 2, so ``astrocut`` returns
two target pixel files: ``tess-s0001-1-2_...`` (the target off the chip: APERTURE = 0 and NaN flux at the centre)
and ``tess-s0001-1-3_...`` (the target at the centre). A client must pick the file whose APERTURE is 1 at the
centre.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

PIXEL_SCALE_DEG = 21.0 / 3600.0
CCD_SIZE_PX = 2048
CCD_GAP_PX = 8
FFI_LEADING_COLUMNS = 44  # collateral columns before the science pixels in a real FFI (physical WCS only)

SECTOR1_LONGITUDE_DEG = 315.8
SECTOR_STEP_DEG = 360.0 / 13.0
CAMERA_LATITUDES_DEG = (-18.0, -42.0, -66.0, -90.0)
GEOMETRIC_SECTORS = tuple(range(1, 14))
# Year-3 sectors re-observe a year-1 field; only sector 33 is modelled (for 10-minute-cadence tests).
REPEATED_SECTORS = {33: 7}
MODELLED_SECTORS = (*GEOMETRIC_SECTORS, *REPEATED_SECTORS)

_OBLIQUITY_RAD = math.radians(23.4392911)
# (su, sv): the quadrant of each CCD in the camera plane.
_CCD_QUADRANTS = {1: (1, -1), 2: (-1, -1), 3: (-1, 1), 4: (1, 1)}

KNOWN_POSITION_RADIUS_DEG = 3.0 / 3600.0
LOCAL_FRAME_PIXEL = (1024.3, 1024.7)
TWO_CCD_POSITION = (330.944, -30.9879)


# ---------------------------------------------------------------------------------------------------------------
# Coordinates


def unit_vector(ra_deg: float | np.ndarray, dec_deg: float | np.ndarray) -> np.ndarray:
    """Equatorial unit vector(s), shape (..., 3)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def radec_of(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec in degrees of (not necessarily unit) equatorial vectors."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def _equatorial_from_ecliptic(vectors: np.ndarray) -> np.ndarray:
    c, s = math.cos(_OBLIQUITY_RAD), math.sin(_OBLIQUITY_RAD)
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    return np.stack([x, c * y - s * z, s * y + c * z], axis=-1)


def ecliptic_of(ra_deg: float, dec_deg: float) -> tuple[float, float]:
    """Ecliptic longitude and latitude (J2000 mean obliquity), degrees."""
    c, s = math.cos(_OBLIQUITY_RAD), math.sin(_OBLIQUITY_RAD)
    x, y, z = unit_vector(ra_deg, dec_deg)
    y_ecl, z_ecl = c * y + s * z, -s * y + c * z
    return math.degrees(math.atan2(y_ecl, x)) % 360.0, math.degrees(math.asin(max(-1.0, min(1.0, z_ecl))))


def angular_separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees."""
    a, b = unit_vector(ra1, dec1), unit_vector(ra2, dec2)
    return math.degrees(math.atan2(float(np.linalg.norm(np.cross(a, b))), float(np.dot(a, b))))


def tangent_plane_deg(
    ra_deg: np.ndarray, dec_deg: np.ndarray, ra0_deg: float, dec0_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """FITS TAN intermediate coordinates (ξ east, η north), degrees, around (ra0, dec0)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    ra0, dec0 = math.radians(ra0_deg), math.radians(dec0_deg)
    cos_c = math.sin(dec0) * np.sin(dec) + math.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    xi = np.cos(dec) * np.sin(ra - ra0) / cos_c
    eta = (math.cos(dec0) * np.sin(dec) - math.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cos_c
    return np.degrees(xi), np.degrees(eta)


# ---------------------------------------------------------------------------------------------------------------
# CCD frames


@dataclass(frozen=True)
class CcdFrame:
    """The mapping between the sky and one CCD's pixels: a gnomonic projection plus a rotation.

    ``centre`` is the tangent point (unit vector), ``axis_u``/``axis_v`` span the tangent plane, and pixel (col, row)
    sits at ``u = su·(offset + a·col + b·row)``-style coordinates encoded in ``pixel_matrix``/``pixel_offset``:
    ``(u, v) = pixel_matrix @ (col, row) + pixel_offset`` (degrees in the tangent plane).
    """

    sector: int
    camera: int
    ccd: int
    centre: tuple[float, float, float]
    axis_u: tuple[float, float, float]
    axis_v: tuple[float, float, float]
    pixel_matrix: tuple[tuple[float, float], tuple[float, float]]
    pixel_offset: tuple[float, float]
    local: bool = False  # True for a known-position frame that is not the geometric CCD

    def sky_to_pixel(self, ra_deg: np.ndarray | float, dec_deg: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """CCD (col, row) of sky positions; NaN for positions behind the tangent plane."""
        p = unit_vector(np.asarray(ra_deg, dtype=float), np.asarray(dec_deg, dtype=float))
        along = p @ np.array(self.centre)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.degrees((p @ np.array(self.axis_u)) / along)
            v = np.degrees((p @ np.array(self.axis_v)) / along)
        u = np.where(along > 1e-6, u, np.nan)
        v = np.where(along > 1e-6, v, np.nan)
        inverse = np.linalg.inv(np.array(self.pixel_matrix))
        du, dv = u - self.pixel_offset[0], v - self.pixel_offset[1]
        col = inverse[0, 0] * du + inverse[0, 1] * dv
        row = inverse[1, 0] * du + inverse[1, 1] * dv
        return col, row

    def pixel_to_sky(self, col: np.ndarray | float, row: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """RA, Dec (degrees) of CCD pixel coordinates."""
        m = np.array(self.pixel_matrix)
        col, row = np.asarray(col, dtype=float), np.asarray(row, dtype=float)
        u = np.radians(m[0, 0] * col + m[0, 1] * row + self.pixel_offset[0])
        v = np.radians(m[1, 0] * col + m[1, 1] * row + self.pixel_offset[1])
        vectors = (
            np.array(self.centre)
            + u[..., np.newaxis] * np.array(self.axis_u)
            + v[..., np.newaxis] * np.array(self.axis_v)
        )
        return radec_of(vectors)

    @property
    def centre_radec(self) -> tuple[float, float]:
        """RA, Dec of the CCD's centre pixel (for the barycentric correction of its FFIs)."""
        ra, dec = self.pixel_to_sky(CCD_SIZE_PX / 2 - 0.5, CCD_SIZE_PX / 2 - 0.5)
        return float(ra), float(dec)


def pointing_sector(sector: int) -> int | None:
    """The year-1 sector whose pointing ``sector`` uses, or None when the sector is not modelled."""
    if sector in GEOMETRIC_SECTORS:
        return sector
    return REPEATED_SECTORS.get(sector)


def _camera_axes(sector: int, camera: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boresight and camera-plane axes (u, v) in equatorial coordinates."""
    base = pointing_sector(sector)
    assert base is not None
    lon = math.radians(SECTOR1_LONGITUDE_DEG + (base - 1) * SECTOR_STEP_DEG)
    lat = math.radians(CAMERA_LATITUDES_DEG[camera - 1])
    boresight = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
    towards_north = np.array([-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat)])
    # boresight x north points west: with v = north this is an un-mirrored image (east to the left of north).
    west = np.cross(boresight, towards_north)
    sign = 1.0 if camera in (1, 2) else -1.0  # cameras 3 and 4 are rotated by 180 degrees
    to_eq = _equatorial_from_ecliptic
    return to_eq(boresight), to_eq(sign * west), to_eq(sign * towards_north)


def _quadrant_pixel_map(ccd: int) -> tuple[tuple[tuple[float, float], tuple[float, float]], tuple[float, float]]:
    """(u, v) = M @ (col, row) + offset for a CCD in its quadrant (a rotation of the (+, +) quadrant's map)."""
    s = PIXEL_SCALE_DEG
    a = (CCD_GAP_PX / 2 + 0.5) * s  # pixel 0's centre sits half a gap plus half a pixel from the axis
    su, sv = _CCD_QUADRANTS[ccd]
    if (su, sv) == (1, 1):
        return ((s, 0.0), (0.0, s)), (a, a)
    if (su, sv) == (-1, 1):  # rotated by 90 degrees: (u, v) -> (-v, u)
        return ((0.0, -s), (s, 0.0)), (-a, a)
    if (su, sv) == (-1, -1):  # 180 degrees
        return ((-s, 0.0), (0.0, -s)), (-a, -a)
    return ((0.0, s), (-s, 0.0)), (a, -a)  # 270 degrees: (u, v) -> (v, -u)


@lru_cache(maxsize=256)
def ccd_frame(sector: int, camera: int, ccd: int) -> CcdFrame:
    """The geometric frame of one CCD in one (modelled) sector."""
    boresight, axis_u, axis_v = _camera_axes(sector, camera)
    matrix, offset = _quadrant_pixel_map(ccd)
    return CcdFrame(
        sector=sector,
        camera=camera,
        ccd=ccd,
        centre=tuple(boresight.tolist()),  # type: ignore[arg-type]
        axis_u=tuple(axis_u.tolist()),  # type: ignore[arg-type]
        axis_v=tuple(axis_v.tolist()),  # type: ignore[arg-type]
        pixel_matrix=matrix,
        pixel_offset=offset,
    )


def _local_frame(sector: int, camera: int, ccd: int, ra_deg: float, dec_deg: float) -> CcdFrame:
    """A frame that puts (ra, dec) at :data:`LOCAL_FRAME_PIXEL` of the CCD, oriented like the camera there."""
    geometric = ccd_frame(sector, camera, ccd)
    centre = unit_vector(ra_deg, dec_deg)
    # Project the camera's axes onto the tangent plane at the position, so the local frame keeps its orientation.
    axis_u = np.array(geometric.axis_u) - np.dot(geometric.axis_u, centre) * centre
    axis_u /= np.linalg.norm(axis_u)
    axis_v = np.cross(centre, axis_u)
    if np.dot(axis_v, geometric.axis_v) < 0:
        axis_v = -axis_v
    matrix, _ = _quadrant_pixel_map(ccd)
    m = np.array(matrix)
    col0, row0 = LOCAL_FRAME_PIXEL
    offset = -(m @ np.array([col0, row0]))
    return CcdFrame(
        sector=sector,
        camera=camera,
        ccd=ccd,
        centre=tuple(centre.tolist()),  # type: ignore[arg-type]
        axis_u=tuple(axis_u.tolist()),  # type: ignore[arg-type]
        axis_v=tuple(axis_v.tolist()),  # type: ignore[arg-type]
        pixel_matrix=matrix,
        pixel_offset=(float(offset[0]), float(offset[1])),
        local=True,
    )


# ---------------------------------------------------------------------------------------------------------------
# Known positions and lookups


@dataclass(frozen=True)
class KnownPosition:
    """A position whose sector list is fixed by a record rather than by the geometry."""

    name: str
    ra_deg: float
    dec_deg: float
    sectors: tuple[tuple[int, int, int], ...]  # (sector, camera, ccd)


KNOWN_POSITIONS: tuple[KnownPosition, ...] = (
    KnownPosition("TESScut 2018 sample", 107.27, -70.0, ((1, 4, 3),)),
    KnownPosition("WASP-18", 24.354314, -45.677896, ((1, 2, 2), (2, 2, 2), (3, 2, 1))),
)


@dataclass(frozen=True)
class Observation:
    """One sector/camera/CCD that sees a position, with the frame to cut it from."""

    sector: int
    camera: int
    ccd: int
    frame: CcdFrame

    @property
    def sector_name(self) -> str:
        """TESScut's ``sectorName``, e.g. ``tess-s0001-1-2``."""
        return f"tess-s{self.sector:04d}-{self.camera}-{self.ccd}"


def known_position(ra_deg: float, dec_deg: float) -> KnownPosition | None:
    """The table entry within :data:`KNOWN_POSITION_RADIUS_DEG` of the position, if any."""
    for entry in KNOWN_POSITIONS:
        if angular_separation_deg(ra_deg, dec_deg, entry.ra_deg, entry.dec_deg) <= KNOWN_POSITION_RADIUS_DEG:
            return entry
    return None


def _distance_to_ccd_px(col: float, row: float) -> float:
    """Pixel distance from (col, row) to the CCD's science area (0 inside); pixels span [i - 0.5, i + 0.5]."""
    if math.isnan(col) or math.isnan(row):
        return math.inf
    low, high = -0.5, CCD_SIZE_PX - 0.5
    dc = max(low - col, 0.0, col - high)
    dr = max(low - row, 0.0, row - high)
    return math.hypot(dc, dr)


def cutout_origin(col: float, row: float, nx: int, ny: int) -> tuple[int, int]:
    """CCD (col, row) of a cutout's first pixel: the pixel holding (col, row) becomes pixel (nx // 2, ny // 2)."""
    return math.floor(col + 0.5) - nx // 2, math.floor(row + 0.5) - ny // 2


def _cutout_overlaps_ccd(col: float, row: float, nx: int, ny: int) -> bool:
    """Whether an nx x ny cutout centred on (col, row) holds at least one science pixel of the CCD."""
    if math.isnan(col) or math.isnan(row) or abs(col) > 1e6 or abs(row) > 1e6:
        return False
    col0, row0 = cutout_origin(col, row, nx, ny)
    return col0 + nx > 0 and col0 < CCD_SIZE_PX and row0 + ny > 0 and row0 < CCD_SIZE_PX


def _candidate_frames(sectors: Iterable[int]) -> Iterable[CcdFrame]:
    for sector in sectors:
        if pointing_sector(sector) is None:
            continue
        for camera in (1, 2, 3, 4):
            for ccd in (1, 2, 3, 4):
                yield ccd_frame(sector, camera, ccd)


def _frame_for_known(entry: KnownPosition, sector: int, camera: int, ccd: int) -> CcdFrame:
    geometric = ccd_frame(sector, camera, ccd)
    col, row = geometric.sky_to_pixel(entry.ra_deg, entry.dec_deg)
    if _distance_to_ccd_px(float(col), float(row)) == 0.0:
        return geometric
    return _local_frame(sector, camera, ccd, entry.ra_deg, entry.dec_deg)


def observations(
    ra_deg: float,
    dec_deg: float,
    *,
    radius_px: float = 0.0,
    cutout_size_px: tuple[int, int] | None = None,
    sectors: Iterable[int] | None = None,
) -> list[Observation]:
    """Every sector/camera/CCD that sees the position, in sector, camera, CCD order.

    ``radius_px`` widens the position to a circle (the ``sector`` endpoint's radius); ``cutout_size_px`` = (nx, ny)
    to a cutout on each CCD's pixel grid (``astrocut``). ``sectors`` restricts the answer.
    """
    wanted = sorted(set(sectors)) if sectors is not None else list(MODELLED_SECTORS)
    entry = known_position(ra_deg, dec_deg)
    found: list[Observation] = []
    if entry is not None:
        for sector, camera, ccd in entry.sectors:
            if sector in wanted:
                found.append(Observation(sector, camera, ccd, _frame_for_known(entry, sector, camera, ccd)))
        return found
    for frame in _candidate_frames(wanted):
        col, row = frame.sky_to_pixel(ra_deg, dec_deg)
        col, row = float(col), float(row)
        if cutout_size_px is not None:
            hit = _cutout_overlaps_ccd(col, row, *cutout_size_px)
        else:
            hit = _distance_to_ccd_px(col, row) <= radius_px
        if hit:
            found.append(Observation(frame.sector, frame.camera, frame.ccd, frame))
    return found


def stable_unit_interval(*parts: object) -> float:
    """A deterministic number in [0, 1) from any parts (used for per-position defaults)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64
