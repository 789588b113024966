"""ExoMAST API v0.1 ``dvdata/tess`` routes, speaking the wire format recorded in upstream-apis.md section 1."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import repeat

import orjson

from .routing import Request, Response, Route, detail_response, json_response, route
from .targets import COLUMN_NAMES, DvArchive, DvTable, KeyedMemo

API_PREFIX = "/api/v0.1/"
_TESS = r"/api/v0\.1/dvdata/tess"

# (colname, datatype, description) of the table columns, in the order ExoMAST returns them.
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("TICID", "int", "unique TESS target identifier (TIC ID)"),
    ("EXTNAME", "varchar(10)", "name of the DV time-series extension (TCE_n)"),
    ("TIME", "real", "Barycentric TESS Julian Date (BJD - 2457000), days"),
    ("TIMECORR", "real", "barycentric correction already applied to TIME, days"),
    ("CADENCENO", "int", "unique cadence number"),
    ("PHASE", "real", "time from the nearest TCE mid-transit, days, in [-period/2, period/2)"),
    ("LC_INIT", "real", "initial relative flux (PDC flux / median - 1), dimensionless"),
    ("LC_INIT_ERR", "real", "1-sigma uncertainty of LC_INIT, dimensionless"),
    ("LC_WHITE", "real", "whitened (noise-normalised) detrended flux, dimensionless"),
    ("LC_DETREND", "real", "relative flux with the systematic trend removed, dimensionless"),
    ("MODEL_INIT", "real", "fitted transit model in relative flux, dimensionless"),
    ("MODEL_WHITE", "real", "whitened fitted transit model, dimensionless"),
    ("DATE_OBS", "varchar(23)", "UTC date and time of the cadence (YYYY-MM-DD hh:mm:ss.sss)"),
    ("TESSDatetime", "varchar(23)", "UTC date and time of the cadence, ISO 8601 (YYYY-MM-DDThh:mm:ss.sss)"),
    ("SECTORS", "varchar(11)", "sector range of the DV run (sNNNN-sNNNN)"),
)
assert tuple(name for name, _, _ in TABLE_COLUMNS) == COLUMN_NAMES

# The two documented shapes list the same fields with different key orders; both are kept as recorded.
TABLE_FIELDS = [{"colname": c, "datatype": t, "description": d} for c, t, d in TABLE_COLUMNS]
COLUMN_DESCRIPTIONS = [{"description": d, "colname": c, "datatype": t} for c, t, d in TABLE_COLUMNS]

_STAR_ID = re.compile(r"\d{1,11}")
_SECTOR_RANGE = re.compile(r"s(\d{4})-s(\d{4})", re.IGNORECASE)
_SECTOR_NUMBER = re.compile(r"\d{1,4}")
_TCE = re.compile(r"(?:TCE_)?(\d{1,3})", re.IGNORECASE)


class ApiError(Exception):
    """An error answered as ``{"detail": ...}`` with the given status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_star_id(raw: str) -> int:
    """A TIC id from a path segment; zero-padded (``00214568914``) and plain forms are the same star."""
    if not _STAR_ID.fullmatch(raw):
        raise ApiError(400, f"Invalid TESS star id '{raw}': expected a TIC id of 1 to 11 digits")
    return int(raw)


def parse_sector_range(raw: str | None) -> tuple[int, int]:
    """``s0001-s0003`` -> (1, 3); a bare sector number ``2`` means ``s0002-s0002``."""
    if not raw:
        raise ApiError(400, "Missing sector in TESS request")
    if found := _SECTOR_RANGE.fullmatch(raw):
        first, last = int(found.group(1)), int(found.group(2))
    elif _SECTOR_NUMBER.fullmatch(raw):
        first = last = int(raw)
    else:
        raise ApiError(400, f"Invalid sector '{raw}': expected sNNNN-sNNNN or a sector number")
    if not 1 <= first <= last:
        raise ApiError(400, f"Invalid sector range '{raw}'")
    return first, last


def parse_tce_number(raw: str | None) -> int:
    """``TCE_2`` or ``2`` -> 2."""
    if not raw:
        raise ApiError(400, "Missing tce in request")
    found = _TCE.fullmatch(raw)
    if found is None:
        raise ApiError(400, f"Invalid tce '{raw}': expected TCE_n or n")
    return int(found.group(1))


def render_table_json(table: DvTable) -> bytes:
    """The ``table/`` body: fields plus one dict per cadence, NaN serialised as ``null`` (orjson's rule)."""
    n_rows = table.n_rows
    columns = table.columns
    values_by_column = [
        repeat(table.target.star.tic_id, n_rows),
        repeat(table.tce.name, n_rows),
        *(columns[name].tolist() for name in COLUMN_NAMES[2:-1]),
        repeat(table.tce.sector_range, n_rows),
    ]
    rows = [dict(zip(COLUMN_NAMES, values, strict=True)) for values in zip(*values_by_column, strict=True)]
    return orjson.dumps({"fields": TABLE_FIELDS, "data": rows})


class ExoMastApi:
    """The ExoMAST ``dvdata/tess`` handlers over a :class:`DvArchive`, with rendered tables cached as bytes."""

    def __init__(self, archive: DvArchive) -> None:
        self.archive = archive
        self._table_bodies = KeyedMemo()

    def routes(self) -> list[Route]:
        """Routing-table entries; the trailing slash is optional on every route."""
        return [
            route("GET", rf"{_TESS}/info/?", "exomast.columns", self._guard(self.columns)),
            route("GET", rf"{_TESS}/(?P<star_id>[^/]+)/tces/?", "exomast.tces", self._guard(self.tces)),
            route("GET", rf"{_TESS}/(?P<star_id>[^/]+)/info/?", "exomast.info", self._guard(self.info)),
            route("GET", rf"{_TESS}/(?P<star_id>[^/]+)/table/?", "exomast.table", self._guard(self.table)),
        ]

    @staticmethod
    def _guard(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            try:
                return handler(request)
            except ApiError as error:
                return detail_response(error.status, error.detail)

        guarded.__name__ = handler.__name__
        return guarded

    def columns(self, request: Request) -> Response:
        """``dvdata/tess/info/``: the description of the table columns."""
        return json_response({"DV Data Table Description": COLUMN_DESCRIPTIONS})

    def tces(self, request: Request) -> Response:
        """``dvdata/tess/{star_id}/tces/``: every TCE of the star as ``sNNNN-sNNNN:TCE_n``, unsorted."""
        tic_id = parse_star_id(request.params["star_id"])
        target = self.archive.target(tic_id)
        if target is None:
            raise ApiError(404, f"No TESS DV data found for TIC {tic_id}")
        return json_response({"TCE": target.tce_ids})

    def info(self, request: Request) -> Response:
        """``dvdata/tess/{star_id}/info/``: the DV primary and TCE-extension headers (+ the TCE list on request)."""
        table = self._find_table(request)
        payload: dict[str, object] = {
            "DV Primary Header": table.primary_header,
            "DV Data Header": table.data_header,
        }
        if request.has_flag("list_tce"):
            payload["TCE"] = table.target.tce_ids
        return json_response(payload)

    def table(self, request: Request) -> Response:
        """``dvdata/tess/{star_id}/table/``: the DV time series of one TCE."""
        table = self._find_table(request)
        key = (table.target.star.tic_id, table.tce.tce_id)
        body = self._table_bodies.get(key, lambda: render_table_json(table))
        return Response(200, body)

    def _find_table(self, request: Request) -> DvTable:
        tic_id = parse_star_id(request.params["star_id"])
        first, last = parse_sector_range(request.query_value("sector"))
        number = parse_tce_number(request.query_value("tce"))
        if self.archive.target(tic_id) is None:
            raise ApiError(404, f"No TESS DV data found for TIC {tic_id}")
        if self.archive.find_tce(tic_id, first, last, number) is None:
            raise ApiError(404, f"No TCE_{number} found for TIC {tic_id} in sectors s{first:04d}-s{last:04d}")
        return self.archive.table(tic_id, first, last, number)
