"""SkyBoT's cone search (IMCCE), as astroquery's ``Skybot.cone_search`` asks it: GET with ``-ra``/``-dec``/``-rd``
(degrees), ``-ep`` (JD) and friends, answered with a VOTable 1.3 (diagnosis-methods.md, "SkyBoT (IMCCE) cone search").

The solar system holds one body: the scene's moving source next to TIC 214568914 (``scene.py``), given a made-up
main-belt number and designation. Its position at the requested epoch comes from the scene's straight track through
the sector-1 CCD's WCS, so it lands on the same pixels as in the emulator's cutouts; its rates are the track's,
differentiated over a few minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .footprints import angular_separation_deg
from .routing import Request, Response, Route, route
from .scene import MOVER_CLOSEST_BTJD, mover_sky_position

SKYBOT_PATH = "/webservices/skybot/api/conesearch.php"
VOTABLE_CONTENT_TYPE = "text/xml;content=x-votable"
BTJD_OFFSET_JD = 2457000.0
MAX_RADIUS_DEG = 10.0  # astroquery caps its cone at 10°, as SkyBoT does
# The track is a straight line in pixels: far from the crossing it means nothing, so the body exists only near it.
TRACK_HALF_SPAN_DAYS = 30.0
RATE_STEP_DAYS = 0.005


@dataclass(frozen=True)
class Body:
    """The fixed properties of the emulator's one solar-system body (made up, main-belt-like)."""

    number: str = "90917"
    name: str = "2002 TV318"
    body_class: str = "MB>Middle"
    mag_v: float = 15.3  # Tmag 14.6 of the scene, plus V - T ≈ 0.7 of a solar-coloured asteroid
    errpos_arcsec: float = 0.12
    dgeo_au: float = 1.62
    dhelio_au: float = 2.61
    phase_deg: float = 4.8
    solelong_deg: float = 168.2


BODY = Body()

# (id, datatype, unit, ucd) in SkyBoT's order; the ``-output=all`` extras follow the basic ones.
_BASIC_FIELDS = (
    ("num", "char", "", "meta.id;meta.number"),
    ("name", "char", "", "meta.id;meta.main"),
    ("ra", "char", "", "pos.eq.ra;meta.main"),
    ("de", "char", "", "pos.eq.dec;meta.main"),
    ("class", "char", "", "meta.code.class;src.class"),
    ("magV", "double", "mag", "phot.mag;em.opt.V"),
    ("errpos", "double", "arcsec", "stat.error.sys"),
    ("angdist", "double", "arcsec", "pos.angDistance"),
    ("dracosdec", "double", "arcsec/h", "pos.pm;pos.eq.ra"),
    ("ddec", "double", "arcsec/h", "pos.pm;pos.eq.dec"),
    ("dgeo", "double", "AU", "phys.distance"),
    ("dhelio", "double", "AU", "phys.distance"),
)
_ALL_FIELDS = (
    ("phase", "double", "deg", "pos.phaseAng"),
    ("solelong", "double", "deg", "pos.angDistance"),
    ("px", "double", "AU", "src.orbital.pos.x"),
    ("py", "double", "AU", "src.orbital.pos.y"),
    ("pz", "double", "AU", "src.orbital.pos.z"),
    ("vx", "double", "AU/d", "phys.veloc;pos.cartesian.x"),
    ("vy", "double", "AU/d", "phys.veloc;pos.cartesian.y"),
    ("vz", "double", "AU/d", "phys.veloc;pos.cartesian.z"),
    ("jdref", "double", "d", "time.epoch"),
)


class SkybotError(Exception):
    """A request SkyBoT refuses; answered as a VOTable with ``QUERY_STATUS`` ``ERROR``."""


@dataclass(frozen=True)
class ConeSearch:
    """The parameters of one cone search that the emulator acts on."""

    ra_deg: float
    dec_deg: float
    radius_deg: float
    epoch_jd: float
    output_all: bool
    asteroids: bool
    max_errpos_arcsec: float


def skybot_routes() -> list[Route]:
    """The SkyBoT route for the emulator's routing table."""
    return [route("GET", SKYBOT_PATH, "skybot.conesearch", cone_search)]


def cone_search(request: Request) -> Response:
    """Answer a cone search with the bodies inside the cone at the epoch (an empty table when none)."""
    try:
        search = parse_cone_search(request)
    except SkybotError as exc:
        # An assumption, kept plausible: an IVOA-style error document (QUERY_STATUS ERROR) with a 400 status.
        return Response(400, error_votable(str(exc)), VOTABLE_CONTENT_TYPE)
    return Response(200, result_votable(search, bodies_in_cone(search)), VOTABLE_CONTENT_TYPE)


def parse_cone_search(request: Request) -> ConeSearch:
    """Read astroquery's parameters; SkybotError on a missing or out-of-range one."""
    ra = _number(request, "-ra")
    dec = _number(request, "-dec")
    radius = _number(request, "-rd")
    epoch = _number(request, "-ep")
    if not 0.0 <= ra < 360.0 or not -90.0 <= dec <= 90.0:
        raise SkybotError(f"Invalid coordinates of the FOV center: RA={ra}, DEC={dec}")
    if not 0.0 < radius <= MAX_RADIUS_DEG:
        raise SkybotError(f"Invalid radius of the FOV: {radius} (0 < rd <= {MAX_RADIUS_DEG:g} deg)")
    mime = request.query_value("-mime") or "votable"
    if mime != "votable":
        raise SkybotError(f"Output format not supported by this emulator: -mime={mime}")
    obj_filter = request.query_value("-objFilter") or "111"
    if len(obj_filter) != 3 or set(obj_filter) - {"0", "1"}:
        raise SkybotError(f"Invalid object filter: {obj_filter} (three digits 0 or 1)")
    max_errpos = _number(request, "-filter", default=120.0)
    return ConeSearch(ra, dec, radius, epoch, request.query_value("-output") == "all", obj_filter[0] == "1", max_errpos)


def _number(request: Request, name: str, *, default: float | None = None) -> float:
    raw = request.query_value(name)
    if raw is None or not raw.strip():
        if default is None:
            raise SkybotError(f"Missing mandatory parameter: {name}")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SkybotError(f"Invalid value of parameter {name}: {raw}") from None
    if not math.isfinite(value):
        raise SkybotError(f"Invalid value of parameter {name}: {raw}")
    return value


@dataclass(frozen=True)
class Sighting:
    """Where a body is at the epoch, and how it moves."""

    body: Body
    ra_deg: float
    dec_deg: float
    angdist_arcsec: float
    dracosdec_arcsec_h: float
    ddec_arcsec_h: float


def bodies_in_cone(search: ConeSearch) -> list[Sighting]:
    """The bodies within the cone at the epoch: the scene's mover or nothing."""
    time_btjd = search.epoch_jd - BTJD_OFFSET_JD
    if not search.asteroids or abs(time_btjd - MOVER_CLOSEST_BTJD) > TRACK_HALF_SPAN_DAYS:
        return []
    if 0 < search.max_errpos_arcsec < BODY.errpos_arcsec:
        return []
    ra, dec = mover_sky_position(time_btjd)
    distance_deg = angular_separation_deg(ra, dec, search.ra_deg, search.dec_deg)
    if not math.isfinite(distance_deg) or distance_deg > search.radius_deg:
        return []
    ra_before, dec_before = mover_sky_position(time_btjd - RATE_STEP_DAYS)
    ra_after, dec_after = mover_sky_position(time_btjd + RATE_STEP_DAYS)
    step_h = 2 * RATE_STEP_DAYS * 24.0
    d_ra = (ra_after - ra_before + 180.0) % 360.0 - 180.0
    dracosdec = d_ra * math.cos(math.radians(dec)) * 3600.0 / step_h
    ddec = (dec_after - dec_before) * 3600.0 / step_h
    return [Sighting(BODY, ra, dec, distance_deg * 3600.0, dracosdec, ddec)]


def sexagesimal(value: float, *, signed: bool, places: int) -> str:
    """``value`` (hours or degrees) as SkyBoT writes it: ``hh mm ss.ssss`` or ``+dd mm ss.sss``."""
    sign = "-" if value < 0 else "+"
    scale = 10**places
    total = round(abs(value) * 3600 * scale)
    whole_s, fraction = divmod(total, scale)
    minutes, seconds = divmod(whole_s, 60)
    units, minutes = divmod(minutes, 60)
    text = f"{units:02d} {minutes:02d} {seconds:02d}.{fraction:0{places}d}"
    return sign + text if signed else text


def _row(search: ConeSearch, sighting: Sighting) -> list[str]:
    body = sighting.body
    cells = [
        body.number,
        body.name,
        sexagesimal(sighting.ra_deg / 15.0, signed=False, places=4),
        sexagesimal(sighting.dec_deg, signed=True, places=3),
        body.body_class,
        f"{body.mag_v:.1f}",
        f"{body.errpos_arcsec:.3f}",
        f"{sighting.angdist_arcsec:.3f}",
        f"{sighting.dracosdec_arcsec_h:.5f}",
        f"{sighting.ddec_arcsec_h:.5f}",
        f"{body.dgeo_au:.9f}",
        f"{body.dhelio_au:.9f}",
    ]
    if search.output_all:
        # Heliocentric state vectors are not modelled: fixed main-belt-like values, enough for the columns to exist.
        cells += [f"{body.phase_deg:.2f}", f"{body.solelong_deg:.2f}"]
        cells += ["-2.404559632", "0.841017722", "0.512302871", "-0.003451290", "-0.009153410", "-0.003320115"]
        cells.append(f"{search.epoch_jd:.6f}")
    return cells


def result_votable(search: ConeSearch, sightings: list[Sighting]) -> bytes:
    """The VOTable 1.3 answer: QUERY_STATUS OK and one table, empty when nothing is in the cone."""
    fields = _BASIC_FIELDS + (_ALL_FIELDS if search.output_all else ())
    field_lines = [
        f'<FIELD name="{fid}" ID="{fid}" datatype="{dtype}"'
        + (' arraysize="*"' if dtype == "char" else "")
        + (f' unit="{unit}"' if unit else "")
        + f' ucd="{ucd}"/>'
        for fid, dtype, unit, ucd in fields
    ]
    rows = "".join(
        "<TR>" + "".join(f"<TD>{escape(cell)}</TD>" for cell in _row(search, sighting)) + "</TR>\n"
        for sighting in sightings
    )
    info = (
        f"SkyBoT cone search at JD {search.epoch_jd}: RA={search.ra_deg} DEC={search.dec_deg} "
        f"rd={search.radius_deg} deg, {len(sightings)} object(s)"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        '<RESOURCE type="results">\n'
        f'<INFO name="QUERY_STATUS" value="OK">{escape(info)}</INFO>\n'
        '<TABLE name="SkyBoT.ConeSearch">\n'
        + "\n".join(field_lines)
        + "\n<DATA><TABLEDATA>\n"
        + rows
        + ("</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n")
    ).encode()


def error_votable(message: str) -> bytes:
    """An error answer: a VOTable with only ``QUERY_STATUS`` ``ERROR`` and the message."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        '<RESOURCE type="results">\n'
        f'<INFO name="QUERY_STATUS" value="ERROR">{escape(message)}</INFO>\n'
        "</RESOURCE>\n</VOTABLE>\n"
    ).encode()
