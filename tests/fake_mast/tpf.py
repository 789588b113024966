"""TESScut target pixel files in the current astrocut layout, written as a stream into a zip on disk.

Layout (upstream-apis.md section 4; astrocut ``tess_cube_cutout.py``): PRIMARY (no data, astrocut's keywords and
placeholders), PIXELS (one row per FFI, 12 columns, per-column celestial and physical WCS for columns 4-8) and
APERTURE (int32, ny x nx, 1 where the pixel is on the CCD, with the linear WCS and the physical alternate WCS ``P``).
Both extensions carry ``INHERIT = T`` and the primary keywords, as astrocut writes them.

A file is never held in memory: the headers are written, then the rows in big-endian chunks of frames, then the
FITS padding, straight into a deflated zip member. CHECKSUM/DATASUM are not written (they would need the data
before the header).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from astropy.io import fits

from .footprints import (
    FFI_LEADING_COLUMNS,
    PIXEL_SCALE_DEG,
    Observation,
    cutout_origin,
    tangent_plane_deg,
)
from .scene import CutoutScene
from .sectors import SectorFrames, sector_frames
from .targets import btjd_to_utc_iso

FITS_BLOCK = 2880
ASTROCUT_VERSION = "1.1.0"
CUBE_DATE = "2024-03-12"  # "FFI cube creation date" of every emulated cube
CHUNK_ELEMENTS = 1 << 18  # pixel values per written chunk (bounds memory for any cutout size)
PIXEL_COLUMNS = ("RAW_CNTS", "FLUX", "FLUX_ERR", "FLUX_BKG", "FLUX_BKG_ERR")


def member_name(observation: Observation, ra_deg: float, dec_deg: float, nx: int, ny: int) -> str:
    """The current astrocut member name: ``tess-s0001-1-2_340.8004000_-36.3439000_50-x-50_astrocut.fits``."""
    return f"{observation.sector_name}_{ra_deg:.7f}_{dec_deg:.7f}_{ny}-x-{nx}_astrocut.fits"


@dataclass(frozen=True)
class CutoutGeometry:
    """Where a cutout sits on its CCD and the linear WCS that describes it."""

    col0: int
    row0: int
    nx: int
    ny: int
    target_col: float
    target_row: float
    crpix: tuple[float, float]  # 1-based, the cutout's geometric centre
    crval: tuple[float, float]
    cd: np.ndarray  # 2 x 2, degrees per pixel
    max_separation_deg: float
    fit_sigma_deg: float


def cutout_geometry(observation: Observation, ra_deg: float, dec_deg: float, nx: int, ny: int) -> CutoutGeometry:
    """Place an nx x ny cutout around (ra, dec) on the observation's CCD and fit its linear TAN WCS."""
    frame = observation.frame
    target_col, target_row = (float(v) for v in frame.sky_to_pixel(ra_deg, dec_deg))
    col0, row0 = cutout_origin(target_col, target_row, nx, ny)
    centre_x, centre_y = (nx - 1) / 2.0, (ny - 1) / 2.0
    ra0, dec0 = (float(v) for v in frame.pixel_to_sky(col0 + centre_x, row0 + centre_y))
    # Central differences of the exact projection give the CD matrix in the TAN plane at the cutout centre.
    offsets = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    ras, decs = frame.pixel_to_sky(col0 + centre_x + offsets[:, 0], row0 + centre_y + offsets[:, 1])
    xi, eta = tangent_plane_deg(ras, decs, ra0, dec0)
    cd = np.array([[(xi[0] - xi[1]) / 2, (xi[2] - xi[3]) / 2], [(eta[0] - eta[1]) / 2, (eta[2] - eta[3]) / 2]])
    # Goodness of the linear fit over the corners and edge midpoints, like astrocut's WCS_MSEP / WCS_SIG.
    xs = np.array([0, nx - 1, 0, nx - 1, centre_x, centre_x, 0, nx - 1], dtype=float)
    ys = np.array([0, 0, ny - 1, ny - 1, 0, ny - 1, centre_y, centre_y], dtype=float)
    true_ra, true_dec = frame.pixel_to_sky(col0 + xs, row0 + ys)
    true_xi, true_eta = tangent_plane_deg(true_ra, true_dec, ra0, dec0)
    linear = cd @ np.vstack([xs - centre_x, ys - centre_y])
    separations = np.hypot(true_xi - linear[0], true_eta - linear[1])
    return CutoutGeometry(
        col0=col0,
        row0=row0,
        nx=nx,
        ny=ny,
        target_col=target_col,
        target_row=target_row,
        crpix=(centre_x + 1.0, centre_y + 1.0),
        crval=(ra0, dec0),
        cd=cd,
        max_separation_deg=float(separations.max()),
        fit_sigma_deg=float(np.sqrt(np.sum(separations**2))),
    )


# ---------------------------------------------------------------------------------------------------------------
# Headers


def _primary_header(
    observation: Observation, frames: SectorFrames, time_btjd: np.ndarray, ra_deg: float, dec_deg: float
) -> fits.Header:
    tstart = float(time_btjd[0] - frames.half_span_days)
    tstop = float(time_btjd[-1] + frames.half_span_days)
    header = fits.PrimaryHDU().header
    cards: list[tuple[str, Any, str]] = [
        ("NEXTEND", 2, "number of standard extensions"),
        ("EXTNAME", "PRIMARY", "name of extension"),
        ("EXTVER", 1, "extension version number (not format version)"),
        ("SIMDATA", False, "file is based on simulated data"),
        ("ORIGIN", "STScI/MAST", "institution responsible for creating this file"),
        ("DATE", CUBE_DATE, "FFI cube creation date"),
        ("TSTART", tstart, "observation start time in TJD of first FFI"),
        ("TSTOP", tstop, "observation stop time in TJD of last FFI"),
        ("DATE-OBS", btjd_to_utc_iso(tstart), "TSTART as UTC calendar date of first FFI"),
        ("DATE-END", btjd_to_utc_iso(tstop), "TSTOP as UTC calendar date of last FFI"),
        ("CREATOR", "astrocut", "software used to produce this file"),
        ("PROCVER", ASTROCUT_VERSION, "software version"),
        ("FILEVER", "1.0", "file format version"),
        ("TIMVERSN", "OGIP/93-003", "OGIP memo number for file format"),
        ("TELESCOP", "TESS", "telescope"),
        ("INSTRUME", "TESS Photometer", "detector type"),
        ("DATA_REL", observation.sector, "data release version number"),
        ("SCCONFIG", 120 if observation.sector <= 13 else 205, "spacecraft configuration ID"),
        ("RADESYS", "ICRS", "reference frame of celestial coordinates"),
        ("EQUINOX", 2000.0, "equinox of celestial coordinate system"),
        ("CRMITEN", True, "spacecraft cosmic ray mitigation enabled"),
        ("CRBLKSZ", 10, "[exposures] s/c cosmic ray mitigation block siz"),
        ("CRSPOC", False, "SPOC cosmic ray cleaning enabled"),
        ("SECTOR", observation.sector, "Observing sector"),
        ("CAMERA", observation.camera, "Camera number"),
        ("CCD", observation.ccd, "CCD chip number"),
        ("FFIINDEX", 1, "number of FFI cadence interval of first FFI"),
        ("FFI_TYPE", "SPOC", "the FFI type used to make the cutouts"),
        ("RA_OBJ", ra_deg, "[deg] right ascension"),
        ("DEC_OBJ", dec_deg, "[deg] declination"),
        ("TIMEREF", "SOLARSYSTEM", "barycentric correction applied to times"),
        ("TASSIGN", "SPACECRAFT", "where time is assigned"),
        ("TIMESYS", "TDB", "time system is Barycentric Dynamical Time (TDB)"),
        ("BJDREFI", 2457000, "integer part of BTJD reference date"),
        ("BJDREFF", 0.0, "fraction of the day in BTJD reference date"),
        ("TIMEUNIT", "d", "time unit for TIME, TSTART, and TSTOP"),
        ("TELAPSE", tstop - tstart, "[d] TSTOP - TSTART"),
        # Placeholders: TESScut knows no target, so a client fills these itself.
        ("OBJECT", "", "string version of target ID"),
        ("TCID", 0, "unique TESS target identifier"),
        ("PXTABLE", 0, "pixel table ID"),
        ("PMRA", 0.0, "[mas/yr] RA proper motion"),
        ("PMDEC", 0.0, "[mas/yr] Dec proper motion"),
        ("PMTOTAL", 0.0, "[mas/yr] Total proper motion"),
        ("TESSMAG", 0.0, "[mag] TESS magnitude"),
        ("TEFF", 0.0, "[K] Effective temperature"),
        ("LOGG", 0.0, "[cm/s2] log10 surface gravity"),
        ("MH", 0.0, "[log10([M/H])] Metallicity"),
        ("RADIUS", 0.0, "[solar radii] Stellar radius"),
        ("TICVER", 0, "TIC version"),
        ("TICID", None, "unique TESS target identifier"),
    ]
    for keyword, value, comment in cards:
        header[keyword] = (value, comment)
    return header


def _column_wcs_cards(geometry: CutoutGeometry, column: int) -> list[tuple[str, Any, str]]:
    cdelt = PIXEL_SCALE_DEG
    pc = geometry.cd / cdelt
    c = column
    return [
        (f"WCAX{c}", 2, "number of WCS axes"),
        (f"1CTYP{c}", "RA---TAN", "right ascension coordinate type"),
        (f"2CTYP{c}", "DEC--TAN", "declination coordinate type"),
        (f"1CRPX{c}", geometry.crpix[0], "[pixel] reference pixel along image axis 1"),
        (f"2CRPX{c}", geometry.crpix[1], "[pixel] reference pixel along image axis 2"),
        (f"1CRVL{c}", geometry.crval[0], "[deg] right ascension at reference pixel"),
        (f"2CRVL{c}", geometry.crval[1], "[deg] declination at reference pixel"),
        (f"1CUNI{c}", "deg", "physical unit in column dimension"),
        (f"2CUNI{c}", "deg", "physical unit in row dimension"),
        (f"1CDLT{c}", cdelt, "[deg] pixel scale in RA dimension"),
        (f"2CDLT{c}", cdelt, "[deg] pixel scale in DEC dimension"),
        (f"11PC{c}", float(pc[0, 0]), "Coordinate transformation matrix element"),
        (f"12PC{c}", float(pc[0, 1]), "Coordinate transformation matrix element"),
        (f"21PC{c}", float(pc[1, 0]), "Coordinate transformation matrix element"),
        (f"22PC{c}", float(pc[1, 1]), "Coordinate transformation matrix element"),
        (f"WCSN{c}P", "PHYSICAL", "table column WCS name"),
        (f"WCAX{c}P", 2, "table column physical WCS dimensions"),
        (f"1CTY{c}P", "RAWX", "table column physical WCS axis 1 type, CCD col"),
        (f"2CTY{c}P", "RAWY", "table column physical WCS axis 2 type, CCD row"),
        (f"1CUN{c}P", "PIXEL", "table column physical WCS axis 1 unit"),
        (f"2CUN{c}P", "PIXEL", "table column physical WCS axis 2 unit"),
        (f"1CRV{c}P", geometry.col0 + FFI_LEADING_COLUMNS + 1, "table column physical WCS ax 1 ref value"),
        (f"2CRV{c}P", geometry.row0 + 1, "table column physical WCS ax 2 ref value"),
        (f"1CDL{c}P", 1.0, "table column physical WCS a1 step"),
        (f"2CDL{c}P", 1.0, "table column physical WCS a2 step"),
        (f"1CRP{c}P", 1, "table column physical WCS a1 reference"),
        (f"2CRP{c}P", 1, "table column physical WCS a2 reference"),
    ]


def _image_keywords(observation: Observation, frames: SectorFrames) -> list[tuple[str, Any, str]]:
    """The FFI keywords astrocut copies into PIXELS (values typical of SPOC FFIs)."""
    cadence_s = frames.cadence_days * 86400.0
    exposure_days = frames.cadence_days * 0.8 * 0.99
    names = frames.ffi_names(observation.camera, observation.ccd)
    tmofst = f"TMOFST{observation.camera}{observation.ccd}"
    return [
        ("BACKAPP", False, "background is subtracted"),
        ("CDPP0_5", None, "RMS CDPP on 0.5-hr time scales"),
        ("CDPP1_0", None, "RMS CDPP on 1.0-hr time scales"),
        ("CDPP2_0", None, "RMS CDPP on 2.0-hr time scales"),
        ("CROWDSAP", None, "Ratio of target flux to total flux in op. ap."),
        ("DEADAPP", True, "deadtime applied"),
        ("DEADC", 0.792, "deadtime correction"),
        ("EXPOSURE", exposure_days, "[d] time on source"),
        ("FLFRCSAP", None, "Frac. of target flux w/in the op. aperture"),
        ("FRAMETIM", 2.0, "[s] frame time [INT_TIME + READTIME]"),
        ("FXDOFF", 209715200, "compression fixed offset"),
        ("GAINA", 5.22, "[electrons/count] CCD output A gain"),
        ("GAINB", 5.21, "[electrons/count] CCD output B gain"),
        ("GAINC", 5.21, "[electrons/count] CCD output C gain"),
        ("GAIND", 5.26, "[electrons/count] CCD output D gain"),
        ("INT_TIME", 1.98, "[s] photon accumulation time per frame"),
        ("LIVETIME", exposure_days, "[d] TELAPSE multiplied by DEADC"),
        ("MEANBLCA", 6437, "[count] FSW mean black level CCD output A"),
        ("MEANBLCB", 6378, "[count] FSW mean black level CCD output B"),
        ("MEANBLCC", 6458, "[count] FSW mean black level CCD output C"),
        ("MEANBLCD", 6369, "[count] FSW mean black level CCD output D"),
        ("NREADOUT", round(cadence_s / 2.0 * 0.8), "number of read per cadence"),
        ("NUM_FRM", round(cadence_s / 2.0), "number of frames per time stamp"),
        ("READNOIA", 9.5, "[electrons] read noise CCD output A"),
        ("READNOIB", 9.3, "[electrons] read noise CCD output B"),
        ("READNOIC", 9.4, "[electrons] read noise CCD output C"),
        ("READNOID", 9.7, "[electrons] read noise CCD output D"),
        ("READTIME", 0.02, "[s] readout time per frame"),
        ("TIERRELA", 1.16e-05, "[d] relative time error"),
        ("TIMEDEL", frames.cadence_days, "[d] time resolution of data"),
        ("TIMEPIXR", 0.5, "bin time beginning=0 middle=0.5 end=1"),
        (tmofst, 2.0, f"(s) readout delay for camera {observation.camera} and ccd {observation.ccd}"),
        ("VIGNAPP", True, "vignetting or collimator correction applied"),
        ("WCS_FFI", names[len(names) // 2], "FFI used for cutout WCS"),
    ]


def _inherit(header: fits.Header, primary: fits.Header) -> None:
    """astrocut's INHERIT: copy every primary keyword the extension lacks."""
    reserved = {"COMMENT", "SIMPLE", "BITPIX", "EXTEND", "NEXTEND"}
    for keyword in primary:
        if keyword not in header and keyword not in reserved:
            header[keyword] = (primary[keyword], primary.comments[keyword])


def pixels_header(
    observation: Observation,
    frames: SectorFrames,
    geometry: CutoutGeometry,
    primary: fits.Header,
) -> fits.Header:
    """The PIXELS BinTable header for ``frames.n_frames`` rows."""
    nx, ny = geometry.nx, geometry.ny
    n = nx * ny
    dim = f"({nx}, {ny})"
    columns = [
        fits.Column(name="TIME", format="D", unit="BJD - 2457000, days", disp="D14.7"),
        fits.Column(name="TIMECORR", format="E", unit="d", disp="E14.7"),
        fits.Column(name="CADENCENO", format="J", disp="I10"),
        fits.Column(name="RAW_CNTS", format=f"{n}J", unit="count", dim=dim, disp="I8", null=-1),
        fits.Column(name="FLUX", format=f"{n}E", unit="e-/s", dim=dim, disp="E14.7"),
        fits.Column(name="FLUX_ERR", format=f"{n}E", unit="e-/s", dim=dim, disp="E14.7"),
        fits.Column(name="FLUX_BKG", format=f"{n}E", unit="e-/s", dim=dim, disp="E14.7"),
        fits.Column(name="FLUX_BKG_ERR", format=f"{n}E", unit="e-/s", dim=dim, disp="E14.7"),
        fits.Column(name="QUALITY", format="J", disp="B16.16"),
        fits.Column(name="POS_CORR1", format="E", unit="pixel", disp="E14.7"),
        fits.Column(name="POS_CORR2", format="E", unit="pixel", disp="E14.7"),
        fits.Column(name="FFI_FILE", format="38A", unit="pixel"),
    ]
    header = fits.BinTableHDU.from_columns(columns, nrows=0).header
    header["NAXIS2"] = frames.n_frames
    comments = {"TTYPE": "column name", "TFORM": "column format", "TUNIT": "unit", "TDISP": "display format"}
    comments |= {"TDIM": "multi-dimensional array spec", "TNULL": "null value"}
    for keyword in list(header):
        prefix = keyword.rstrip("0123456789")
        if prefix in comments:
            header.comments[keyword] = comments[prefix]
    for column in range(4, 9):
        anchor = f"TDIM{column}"
        for keyword, value, comment in reversed(_column_wcs_cards(geometry, column)):
            header.insert(anchor, (keyword, value, comment), after=True)
    header["EXTNAME"] = ("PIXELS", "name of extension")
    header["INHERIT"] = (True, "inherit the primary header")
    for keyword, value, comment in _image_keywords(observation, frames):
        header[keyword] = (value, comment)
    _inherit(header, primary)
    return header


def aperture_hdu(geometry: CutoutGeometry, primary: fits.Header, on_ccd: np.ndarray) -> fits.ImageHDU:
    """The APERTURE image: 1 where the cutout pixel is on the CCD, with the cutout's WCS."""
    hdu = fits.ImageHDU(data=on_ccd.astype(np.int32))
    header = hdu.header
    cdelt = PIXEL_SCALE_DEG
    pc = geometry.cd / cdelt
    ra0, dec0 = geometry.crval
    cards: list[tuple[str, Any, str]] = [
        ("EXTNAME", "APERTURE", "name of extension"),
        ("WCSAXES", 2, "Number of coordinate axes"),
        ("CRPIX1", geometry.crpix[0], "Pixel coordinate of reference point"),
        ("CRPIX2", geometry.crpix[1], "Pixel coordinate of reference point"),
        ("PC1_1", float(pc[0, 0]), "Coordinate transformation matrix element"),
        ("PC1_2", float(pc[0, 1]), "Coordinate transformation matrix element"),
        ("PC2_1", float(pc[1, 0]), "Coordinate transformation matrix element"),
        ("PC2_2", float(pc[1, 1]), "Coordinate transformation matrix element"),
        ("CDELT1", cdelt, "[deg] Coordinate increment at reference point"),
        ("CDELT2", cdelt, "[deg] Coordinate increment at reference point"),
        ("CUNIT1", "deg", "Units of coordinate increment and value"),
        ("CUNIT2", "deg", "Units of coordinate increment and value"),
        ("CTYPE1", "RA---TAN", "Right ascension, gnomonic projection"),
        ("CTYPE2", "DEC--TAN", "Declination, gnomonic projection"),
        ("CRVAL1", ra0, "[deg] Coordinate value at reference point"),
        ("CRVAL2", dec0, "[deg] Coordinate value at reference point"),
        ("LONPOLE", 180.0, "[deg] Native longitude of celestial pole"),
        ("LATPOLE", dec0, "[deg] Native latitude of celestial pole"),
        ("MJDREF", 0.0, "[d] MJD of fiducial time"),
        ("RADESYS", "ICRS", "Equatorial coordinate system"),
        ("WCSNAMEP", "PHYSICAL", "name of world coordinate system alternate P"),
        ("WCSAXESP", 2, "number of WCS physical axes"),
        ("CTYPE1P", "RAWX", "physical WCS axis 1 type CCD col"),
        ("CUNIT1P", "PIXEL", "physical WCS axis 1 unit"),
        ("CRPIX1P", 1, "reference CCD column"),
        ("CRVAL1P", geometry.col0 + FFI_LEADING_COLUMNS + 1, "value at reference CCD column"),
        ("CDELT1P", 1.0, "physical WCS axis 1 step"),
        ("CTYPE2P", "RAWY", "physical WCS axis 2 type CCD row"),
        ("CUNIT2P", "PIXEL", "physical WCS axis 2 unit"),
        ("CRPIX2P", 1, "reference CCD row"),
        ("CRVAL2P", geometry.row0 + 1, "value at reference CCD row"),
        ("CDELT2P", 1.0, "physical WCS axis 2 step"),
        ("NPIXMISS", None, "Number of op. aperture pixels not collected"),
        ("NPIXSAP", None, "Number of pixels in optimal aperture"),
        ("WCS_MSEP", geometry.max_separation_deg, "[deg] Max offset between cutout WCS and FFI WCS"),
        ("WCS_SIG", geometry.fit_sigma_deg, "[deg] Error measurement of cutout WCS fit"),
        ("INHERIT", True, "inherit the primary header"),
    ]
    for keyword, value, comment in cards:
        header[keyword] = (value, comment)
    _inherit(header, primary)
    return hdu


# ---------------------------------------------------------------------------------------------------------------
# Streaming


def _row_dtype(nx: int, ny: int) -> np.dtype[Any]:
    shape = (ny, nx)
    return np.dtype(
        [
            ("TIME", ">f8"),
            ("TIMECORR", ">f4"),
            ("CADENCENO", ">i4"),
            ("RAW_CNTS", ">i4", shape),
            ("FLUX", ">f4", shape),
            ("FLUX_ERR", ">f4", shape),
            ("FLUX_BKG", ">f4", shape),
            ("FLUX_BKG_ERR", ">f4", shape),
            ("QUALITY", ">i4"),
            ("POS_CORR1", ">f4"),
            ("POS_CORR2", ">f4"),
            ("FFI_FILE", "S38"),
        ]
    )


def _padding(length: int) -> bytes:
    return b"\0" * (-length % FITS_BLOCK)


def write_tpf(
    out: IO[bytes],
    observation: Observation,
    ra_deg: float,
    dec_deg: float,
    nx: int,
    ny: int,
) -> None:
    """Stream one target pixel file into ``out`` (e.g. an open zip member)."""
    frames = sector_frames(observation.sector)
    ra_centre, dec_centre = observation.frame.centre_radec
    time_btjd, timecorr = frames.for_ccd(ra_centre, dec_centre)
    geometry = cutout_geometry(observation, ra_deg, dec_deg, nx, ny)
    scene = CutoutScene(
        frame=observation.frame,
        col0=geometry.col0,
        row0=geometry.row0,
        nx=nx,
        ny=ny,
        cadence_days=frames.cadence_days,
        time_btjd=time_btjd,
        orbit_starts_btjd=frames.orbit_starts_btjd,
    )
    scene.populate(ra_deg, dec_deg)

    primary = _primary_header(observation, frames, time_btjd, ra_deg, dec_deg)
    out.write(primary.tostring().encode("ascii"))
    header = pixels_header(observation, frames, geometry, primary)
    out.write(header.tostring().encode("ascii"))

    dtype = _row_dtype(nx, ny)
    assert dtype.itemsize == header["NAXIS1"], (dtype.itemsize, header["NAXIS1"])
    chunk = max(1, CHUNK_ELEMENTS // (nx * ny))
    rows = np.zeros(min(chunk, frames.n_frames), dtype=dtype)
    rows["RAW_CNTS"] = -1  # TESScut has no raw counts: TNULL everywhere
    names = np.array(frames.ffi_names(observation.camera, observation.ccd), dtype="S38")
    for first in range(0, frames.n_frames, chunk):
        stop = min(first + chunk, frames.n_frames)
        k = stop - first
        block = rows[:k]
        block["TIME"] = time_btjd[first:stop]
        block["TIMECORR"] = timecorr[first:stop]
        block["FLUX"], block["FLUX_ERR"] = scene.frames(first, stop)
        block["QUALITY"] = frames.quality[first:stop]
        block["FFI_FILE"] = names[first:stop]
        out.write(block.view(np.uint8).data)
    out.write(_padding(frames.n_frames * dtype.itemsize))

    aperture = aperture_hdu(geometry, primary, scene.on_ccd)
    out.write(aperture.header.tostring().encode("ascii"))
    data = aperture.data.astype(">i4").tobytes()
    out.write(data + _padding(len(data)))


def write_cutout_zip(
    path: str,
    observations: Sequence[Observation],
    ra_deg: float,
    dec_deg: float,
    nx: int,
    ny: int,
) -> None:
    """Write the TESScut response zip: one deflated TPF member per observation, in order."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for observation in observations:
            name = member_name(observation, ra_deg, dec_deg, nx, ny)
            with archive.open(name, "w", force_zip64=True) as member:
                write_tpf(member, observation, ra_deg, dec_deg, nx, ny)
