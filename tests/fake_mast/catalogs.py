"""The TIC through MAST's Portal ("Mashup") API: ``POST /api/v0/invoke`` with a form body ``request=<JSON>``.

Wire format, checked against:
- the MAST API docs (https://mast.stsci.edu/api/v0/, stored copy): the request URL is
  ``/api/v0/invoke?request=<Mashup Request Object>`` by GET or POST; a request object is
  ``{"service", "params", "format", "pagesize", "page", "removenullcolumns", ...}``; a json result is
  ``{"status": "EXECUTING/COMPLETE/ERROR", "msg", "paging": {"page", "pageSize", "pagesFiltered", "rows",
  "rowsFiltered", "rowsTotal"}, "fields": [{"name", "type"}], "data": [{column: value}]}`` (md_result_formats.html);
- astroquery 0.4.11 (the venv), ``mast/collections.py`` l.438-447 and ``mast/discovery_portal.py``
  (``_prepare_service_request_string``, ``service_request_async``): ``Catalogs.query_criteria(catalog="Tic",
  ID=...)`` POSTs ``request=<urlencoded JSON>`` with ``{"service": "Mast.Catalogs.Filtered.Tic.Rows", "params":
  {"columns": "*", "filters": [{"paramName": "ID", "values": ["214568914"]}]}, "format": "json", "pagesize": 50000,
  "page": 1, "cacheBreaker": ...}`` after fetching the column config (``/portal/Mashup/Mashup.asmx/columnsconfig``,
  then ``Mast.Catalogs.All.Tic`` in ``extjs`` format for its histograms). Other clients send the same object with
  ``Mast.Catalogs.Filtered.Tic`` and ``"columns": "c.*"`` or a column list;
- astroquery's recorded TIC response (``astroquery/mast/tests/data/tic.json`` @728c62f3): the column names and types
  of :data:`TIC_FIELDS`, ``"ID"`` declared ``string``, ``msg`` empty, ``status`` COMPLETE. That 2018 recording
  writes the ID values as JSON numbers; this emulator sends strings, as the declared type says, so a client must
  accept both.

Served: ``Mast.Catalogs.Filtered.Tic[.Position][.Rows]`` (filters on any column: a list of values, or
``[{"min", "max"}]`` for numbers; ``.Position`` adds ``ra``/``dec``/``radius`` in degrees), ``Mast.Catalogs.Tic.Cone``
and the ``Mast.Catalogs.All.Tic`` histograms (empty). Any other service answers the same JSON shape with
``"status": "ERROR"``. An unknown TIC is ``COMPLETE`` with no rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from .footprints import angular_separation_deg, ecliptic_of, unit_vector
from .routing import Request, Response, Route, json_response, route
from .targets import CATALOGUE
from .verdict_scenes import SCENE_STARS

INVOKE_PATH = "/api/v0/invoke"
COLUMNS_CONFIG_PATH = "/portal/Mashup/Mashup.asmx/columnsconfig"
TIC_VERSION = "20190415"  # TIC v8

# Column names and types in the order of astroquery's recorded TIC response (tests/data/tic.json).
TIC_FIELDS: tuple[tuple[str, str], ...] = (
    ("ID", "string"), ("version", "string"), ("HIP", "int"), ("TYC", "string"), ("UCAC", "string"),
    ("TWOMASS", "string"), ("SDSS", "string"), ("ALLWISE", "string"), ("GAIA", "string"), ("APASS", "string"),
    ("KIC", "int"), ("objType", "string"), ("typeSrc", "string"), ("ra", "float"), ("dec", "float"),
    ("POSflag", "string"), ("pmRA", "float"), ("e_pmRA", "float"), ("pmDEC", "float"), ("e_pmDEC", "float"),
    ("PMflag", "string"), ("plx", "float"), ("e_plx", "float"), ("PARflag", "string"), ("gallong", "float"),
    ("gallat", "float"), ("eclong", "float"), ("eclat", "float"), ("Bmag", "float"), ("e_Bmag", "float"),
    ("Vmag", "float"), ("e_Vmag", "float"), ("umag", "float"), ("e_umag", "float"), ("gmag", "float"),
    ("e_gmag", "float"), ("rmag", "float"), ("e_rmag", "float"), ("imag", "float"), ("e_imag", "float"),
    ("zmag", "float"), ("e_zmag", "float"), ("Jmag", "float"), ("e_Jmag", "float"), ("Hmag", "float"),
    ("e_Hmag", "float"), ("Kmag", "float"), ("e_Kmag", "float"), ("TWOMflag", "string"), ("prox", "float"),
    ("w1mag", "float"), ("e_w1mag", "float"), ("w2mag", "float"), ("e_w2mag", "float"), ("w3mag", "float"),
    ("e_w3mag", "float"), ("w4mag", "float"), ("e_w4mag", "float"), ("GAIAmag", "float"), ("e_GAIAmag", "float"),
    ("Tmag", "float"), ("e_Tmag", "float"), ("TESSflag", "string"), ("SPFlag", "string"), ("Teff", "float"),
    ("e_Teff", "float"), ("logg", "float"), ("e_logg", "float"), ("MH", "float"), ("e_MH", "float"),
    ("rad", "float"), ("e_rad", "float"), ("mass", "float"), ("e_mass", "float"), ("rho", "float"),
    ("e_rho", "float"), ("lumclass", "string"), ("lum", "float"), ("e_lum", "float"), ("d", "float"),
    ("e_d", "float"), ("ebv", "float"), ("e_ebv", "float"), ("numcont", "int"), ("contratio", "float"),
    ("disposition", "string"), ("duplicate_id", "string"), ("priority", "float"), ("objID", "string"),
)  # fmt: skip
FIELD_TYPES = dict(TIC_FIELDS)
_NUMERIC = {"float", "int"}

# ICRS -> Galactic rotation (Hipparcos definition).
_TO_GALACTIC = (
    (-0.0548755604162154, -0.8734370902348850, -0.4838350155487132),
    (0.4941094278755837, -0.4448296299600112, 0.7469822444972189),
    (-0.8676661490190047, -0.1980763734312015, 0.4559837761750669),
)


@dataclass(frozen=True)
class TicStar:
    """The TIC values the emulator knows for one star (everything else is null)."""

    tic_id: int
    ra_deg: float
    dec_deg: float
    tmag: float
    teff_k: float | None = None
    logg_cgs: float | None = None
    mh_dex: float | None = None
    radius_rsun: float | None = None
    mass_msun: float | None = None
    pmra_mas_per_yr: float | None = None
    pmdec_mas_per_yr: float | None = None
    gaia_id: str | None = None


def _dv_star(tic_id: int, mass_msun: float) -> TicStar:
    star = CATALOGUE[tic_id].star
    return TicStar(
        tic_id=star.tic_id,
        ra_deg=star.ra_deg,
        dec_deg=star.dec_deg,
        tmag=star.tess_mag,
        teff_k=star.teff_k,
        logg_cgs=star.logg_cgs,
        mh_dex=star.mh_dex,
        radius_rsun=star.radius_rsun,
        mass_msun=mass_msun,
        pmra_mas_per_yr=star.pmra_mas_per_yr,
        pmdec_mas_per_yr=star.pmdec_mas_per_yr,
    )


# The three DV targets carry their DV header values; 206462606 and 206544316 (RA/Dec/Tmag from the MIT sector-1
# target list) have no DV data, so a client can only resolve them here. Their stellar parameters, and the whole of
# TIC 1000000001 (a northern star on no detector in sectors 1-13), are invented but plausible.
# The stars of the diagnosis scenes (verdict_scenes.py) follow, the eclipsing binary TIC 1200000103 among them.
TIC_STARS: tuple[TicStar, ...] = (
    _dv_star(214568914, mass_msun=0.47),
    _dv_star(25155310, mass_msun=1.12),
    _dv_star(100100827, mass_msun=1.22),
    TicStar(206462606, 330.9041, -19.9710, 9.76, 6070.0, 4.12, None, 1.52, 1.18, 14.2, -8.9),
    TicStar(206544316, 18.4189, -59.6598, 11.60, 5450.0, 4.45, None, 0.93, 0.94, 3.6, 11.8),
    TicStar(1000000001, 10.0, 40.0, 12.0, 5100.0, 4.55, 0.0, 0.82, 0.86, -20.5, -4.1),
    *(
        TicStar(s.tic_id, s.ra_deg, s.dec_deg, s.tmag, s.teff_k, s.logg_cgs, 0.0, s.radius_rsun, s.mass_msun)
        for s in SCENE_STARS
    ),
)
TIC_BY_ID = {star.tic_id: star for star in TIC_STARS}


def _galactic_of(ra_deg: float, dec_deg: float) -> tuple[float, float]:
    x, y, z = unit_vector(ra_deg, dec_deg)
    gx, gy, gz = (row[0] * x + row[1] * y + row[2] * z for row in _TO_GALACTIC)
    return math.degrees(math.atan2(gy, gx)) % 360.0, math.degrees(math.asin(max(-1.0, min(1.0, gz))))


def tic_row(star: TicStar) -> dict[str, Any]:
    """One ``data`` entry: every TIC column, nulls where the emulator has no value."""
    row: dict[str, Any] = dict.fromkeys(FIELD_TYPES)
    eclong, eclat = ecliptic_of(star.ra_deg, star.dec_deg)
    gallong, gallat = _galactic_of(star.ra_deg, star.dec_deg)
    rho = None
    if star.mass_msun is not None and star.radius_rsun:
        rho = round(star.mass_msun / star.radius_rsun**3, 5)
    row.update(
        {
            "ID": str(star.tic_id),
            "version": TIC_VERSION,
            "GAIA": star.gaia_id,
            "objType": "STAR",
            "typeSrc": "tmgaia2",
            "ra": star.ra_deg,
            "dec": star.dec_deg,
            "POSflag": "tmgaia2",
            "pmRA": star.pmra_mas_per_yr,
            "pmDEC": star.pmdec_mas_per_yr,
            "PMflag": "gaia2" if star.pmra_mas_per_yr is not None else None,
            "gallong": round(gallong, 6),
            "gallat": round(gallat, 6),
            "eclong": round(eclong, 6),
            "eclat": round(eclat, 6),
            "Tmag": star.tmag,
            "e_Tmag": 0.006 if star.tmag < 12 else 0.011,
            "TESSflag": "gaiaj",
            "SPFlag": "spect" if star.teff_k is not None else None,
            "Teff": star.teff_k,
            "logg": star.logg_cgs,
            "MH": star.mh_dex,
            "rad": star.radius_rsun,
            "mass": star.mass_msun,
            "rho": rho,
            "lumclass": "DWARF",
            "objID": str(400_000_000 + star.tic_id % 100_000_000),
        }
    )
    return row


# ---------------------------------------------------------------------------------------------------------------
# The Mashup request


class MashupError(Exception):
    """A request the Portal answers with ``"status": "ERROR"``."""


def _page_numbers(request: dict[str, Any]) -> tuple[int, int]:
    try:
        pagesize = int(request.get("pagesize") or 50000)
        page = int(request.get("page") or 1)
    except (TypeError, ValueError) as error:
        raise MashupError(f"Invalid paging: {error}") from None
    if pagesize < 1 or page < 1:
        raise MashupError("pagesize and page must be positive")
    return pagesize, page


def _selected_columns(params: dict[str, Any]) -> list[str]:
    columns = params.get("columns", "*")
    if not isinstance(columns, str):
        raise MashupError("columns must be a string")
    if columns.strip() in ("*", "c.*", ""):
        return [name for name, _ in TIC_FIELDS]
    lookup = {name.lower(): name for name in FIELD_TYPES}
    chosen: list[str] = []
    for raw in columns.split(","):
        name = raw.strip().removeprefix("c.")
        if name.lower() not in lookup:
            raise MashupError(f"Invalid column name: {name}")
        chosen.append(lookup[name.lower()])
    return chosen


def _matches(row: dict[str, Any], filters: list[Any]) -> bool:
    lookup = {name.lower(): name for name in FIELD_TYPES}
    for spec in filters:
        if not isinstance(spec, dict) or "paramName" not in spec:
            raise MashupError("Each filter needs a paramName and values")
        name = lookup.get(str(spec["paramName"]).lower())
        if name is None:
            raise MashupError(f"Invalid filter parameter: {spec['paramName']}")
        values = spec.get("values", [])
        if not isinstance(values, list):
            values = [values]
        value = row[name]
        if values and isinstance(values[0], dict):
            if value is None or FIELD_TYPES[name] not in _NUMERIC:
                return False
            if not any(float(v.get("min", -math.inf)) <= float(value) <= float(v.get("max", math.inf)) for v in values):
                return False
        elif str(value) not in {str(v) for v in values}:
            return False
    return True


def _cone(params: dict[str, Any]) -> tuple[float, float, float]:
    try:
        return float(params["ra"]), float(params["dec"]), float(params.get("radius", 0.2))
    except (KeyError, TypeError, ValueError):
        raise MashupError("A position query needs numeric ra, dec and radius (degrees)") from None


def query_tic(request: dict[str, Any]) -> dict[str, Any]:
    """Run one Mashup request object against the emulator's TIC; raises :class:`MashupError`."""
    service = request.get("service")
    params = request.get("params") or {}
    if not isinstance(params, dict):
        raise MashupError("params must be an object")
    if service == "Mast.Catalogs.All.Tic":
        tables = [{"name": "Table", "ExtendedProperties": {"discreteHistogram": {}, "continuousHistogram": {}}}]
        return {"status": "COMPLETE", "msg": "", "data": {"name": "NewDataSet", "Tables": tables}}
    filtered = isinstance(service, str) and service.removesuffix(".Rows") in (
        "Mast.Catalogs.Filtered.Tic",
        "Mast.Catalogs.Filtered.Tic.Position",
    )
    if not filtered and service != "Mast.Catalogs.Tic.Cone":
        raise MashupError(f"Unknown or unsupported service: {service}")
    pagesize, page = _page_numbers(request)
    columns = _selected_columns(params)
    filters = params.get("filters", [])
    if not isinstance(filters, list):
        raise MashupError("filters must be a list")
    if service == "Mast.Catalogs.Tic.Cone" or ".Position" in str(service):
        ra, dec, radius = _cone(params)
        stars = [s for s in TIC_STARS if angular_separation_deg(ra, dec, s.ra_deg, s.dec_deg) <= radius]
    else:
        if not filters:
            raise MashupError("At least one filter is required")
        stars = list(TIC_STARS)
    rows = [row for row in map(tic_row, stars) if _matches(row, filters)]
    if request.get("removenullcolumns") in (True, "true", "True"):
        columns = [name for name in columns if any(row[name] is not None for row in rows)]
    first = (page - 1) * pagesize
    shown = rows[first : first + pagesize]
    return {
        "status": "COMPLETE",
        "msg": "",
        "data": [{name: row[name] for name in columns} for row in shown],
        "fields": [{"name": name, "type": FIELD_TYPES[name]} for name in columns],
        "paging": {
            "page": page,
            "pageSize": pagesize,
            "pagesFiltered": math.ceil(len(rows) / pagesize),
            "rows": len(shown),
            "rowsFiltered": len(rows),
            "rowsTotal": len(rows),
        },
    }


def error_payload(message: str) -> dict[str, Any]:
    """The ERROR answer, in the same shape as a result."""
    paging = {"page": 1, "pageSize": 0, "pagesFiltered": 0, "rows": 0, "rowsFiltered": 0, "rowsTotal": 0}
    return {"status": "ERROR", "msg": message, "data": [], "fields": [], "paging": paging}


def _form_value(request: Request, name: str) -> str | None:
    form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True) if request.body else {}
    values = form.get(name) or request.query.get(name)
    return values[0] if values else None


def invoke(request: Request) -> Response:
    """``/api/v0/invoke``: one Mashup request, by GET or POST."""
    raw = _form_value(request, "request")
    if raw is None:
        return json_response(error_payload("Missing request parameter"))
    try:
        mashup = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return json_response(error_payload(f"Invalid request JSON: {error}"))
    if not isinstance(mashup, dict):
        return json_response(error_payload("The request must be a JSON object"))
    try:
        return json_response(query_tic(mashup))
    except MashupError as error:
        return json_response(error_payload(str(error)))
    except (TypeError, ValueError) as error:
        return json_response(error_payload(f"Invalid request: {error}"))


def columns_config(request: Request) -> Response:
    """The Portal's column configuration (what astroquery reads to type its filters); TIC configs only."""
    config_id = _form_value(request, "colConfigId") or ""
    if "tic" not in config_id.lower() and "tess" not in config_id.lower():
        return json_response({})
    datatypes = {"string": "char", "float": "double", "int": "int"}
    return json_response(
        {name: {"text": name, "vot.datatype": datatypes[kind]} for name, kind in TIC_FIELDS if name != "ID"}
        | {"ID": {"text": "TIC ID", "vot.datatype": "char"}}
    )


def catalog_routes() -> list[Route]:
    """Routing-table entries of the Portal API."""
    return [
        route("POST", r"/api/v0/invoke/?", "mast.invoke", invoke),
        route("GET", r"/api/v0/invoke/?", "mast.invoke", invoke),
        route("POST", r"/portal/Mashup/Mashup\.asmx/columnsconfig/?", "mast.columnsconfig", columns_config),
    ]


def catalogue_positions() -> list[tuple[int, float, float, float]]:
    """(TIC, RA, Dec, Tmag) of every catalogued star, for the cutout sky."""
    return [(star.tic_id, star.ra_deg, star.dec_deg, star.tmag) for star in TIC_STARS]
