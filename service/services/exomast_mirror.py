"""The ExoMAST API v0.1 mirror: upstream's request rules, JSON shapes and error bodies, over DvService's cache.

Everything the mirror serves is made from DvService's data entries (TCE list, DV headers, DV table), so a mirror
call and a clean-route call for the same TCE share one ExoMAST fetch and one single-flight. Only the serialised
bodies are the mirror's own cache entries.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import bokeh
import numpy as np
import orjson
from bokeh.resources import Resources

from service.errors import BadUpstreamResponse, NotFound
from service.infra.cache import CachedBody
from service.infra.threads import Limiters, run_blocking
from service.rendering import phaseplot
from service.rendering.phaseplot import HTML_MEDIA_TYPE, PhaseSeries, render_phaseplot_html
from service.services.artifacts import Artifact
from service.services.dv import DvService
from service.services.identity import Product
from service.tces import TceRef
from service.upstream.exomast import DvTable

# Bump when a mirror body's bytes change for the same inputs, so old cache entries are not served.
JSON_MEDIA_TYPE = "application/json"
# The ExoMAST mirror's answers, shaped by this module (its source is their fingerprint; see services/identity.py).
_SHAPED_BY = (sys.modules[__name__],)
MIRROR_TCES = Product("exomast-tces", (JSON_MEDIA_TYPE,), _SHAPED_BY)
MIRROR_INFO = Product("exomast-info", (JSON_MEDIA_TYPE,), _SHAPED_BY)
MIRROR_TABLE = Product("exomast-table", (JSON_MEDIA_TYPE,), _SHAPED_BY)
MIRROR_PHASEPLOT = Product("exomast-phaseplot", (HTML_MEDIA_TYPE,), (*_SHAPED_BY, phaseplot), kind="render")
PHASEPLOT_COLUMNS = ("PHASE", "LC_DETREND", "MODEL_INIT")

# ExoMAST's rules for star ids, sectors and TCE names (ASCII digits only, like the clean routes).
_STAR_ID = re.compile(r"[0-9]{1,11}")
_SECTOR_RANGE = re.compile(r"s([0-9]{4})-s([0-9]{4})", re.IGNORECASE)
_SECTOR_NUMBER = re.compile(r"[0-9]{1,4}")
_TCE = re.compile(r"(?:TCE_)?([0-9]{1,3})", re.IGNORECASE)
# A whole entry of the TCE list, as the published TESScut-ExoMAST tutorial passes it in ``tce``.
_COMBINED = re.compile(r"(s[0-9]{4}-s[0-9]{4}):((?:TCE_)?[0-9]{1,3})", re.IGNORECASE)
_INT_TYPES = ("int", "integer", "bigint", "smallint", "long")
T = TypeVar("T")


class UpstreamStyleError(Exception):
    """An error answered the way ExoMAST answers it: ``{"detail": "..."}`` as plain JSON, with this status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_star_id(raw: str) -> int:
    """Return the TIC id of a ``star_id`` path segment; zero-padded and plain forms are the same star."""
    if not _STAR_ID.fullmatch(raw):
        raise UpstreamStyleError(400, f"Invalid TESS star id '{raw}': expected a TIC id of 1 to 11 digits")
    return int(raw)


def parse_tce_request(tce: str | None, sector: str | None) -> TceRef:
    """Return the TCE an ``info/`` or ``table/`` request names, checked in ExoMAST's order: sector, then tce.

    One addition to ExoMAST's rules: with no ``sector``, a whole TCE-list entry in ``tce``
    (``s0001-s0001:TCE_1``) names its own sector range. The published tutorial sends that; ExoMAST answers 400.
    """
    if not sector and tce and (combined := _COMBINED.fullmatch(tce)):
        sector, tce = combined.group(1), combined.group(2)
    if not sector:
        raise UpstreamStyleError(400, "Missing sector in TESS request")
    if found := _SECTOR_RANGE.fullmatch(sector):
        first, last = int(found.group(1)), int(found.group(2))
    elif _SECTOR_NUMBER.fullmatch(sector):
        first = last = int(sector)
    else:
        raise UpstreamStyleError(400, f"Invalid sector '{sector}': expected sNNNN-sNNNN or a sector number")
    if not 1 <= first <= last:
        raise UpstreamStyleError(400, f"Invalid sector range '{sector}'")
    if not tce:
        raise UpstreamStyleError(400, "Missing tce in request")
    number = _TCE.fullmatch(tce)
    if number is None:
        raise UpstreamStyleError(400, f"Invalid tce '{tce}': expected TCE_n or n")
    return TceRef(first, last, int(number.group(1)))


def _row_values(values: np.ndarray, datatype: str) -> list[Any]:
    if datatype.strip().lower() in _INT_TYPES and values.dtype.kind == "f":
        # An int column with gaps was kept as float64 with NaN: give the numbers back as ints.
        return [None if v != v else int(v) for v in values.tolist()]
    as_list: list[Any] = values.tolist()  # floats stay floats (NaN becomes null in orjson), ints ints, text str
    return as_list


def upstream_table_json(table: DvTable) -> bytes:
    """Serialise a DV table in ExoMAST's ``table/`` shape: fields as given, then one dict per row (blocking)."""
    names = [f.name for f in table.fields]
    columns = [_row_values(table.columns[f.name], f.datatype) for f in table.fields]
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    fields = [{"colname": f.name, "datatype": f.datatype, "description": f.description} for f in table.fields]
    return orjson.dumps({"fields": fields, "data": rows})


class ExoMastMirror:
    """Answers the mirror's four ``dvdata/tess`` routes from DvService's cache; built once, by the lifespan."""

    def __init__(self, dv: DvService, limiters: Limiters, *, bokeh_resources: Resources) -> None:
        self._dv = dv
        self._limiters = limiters
        self._bokeh = bokeh_resources
        # The page names BokehJS's URLs and its document is read by that exact BokehJS: both key the cached page.
        self._bokeh_key = (bokeh.__version__, *bokeh_resources.js_files)

    async def tces_response(self, tic_id: int) -> tuple[CachedBody, bool]:
        """Return ``{"TCE": [...]}`` in ExoMAST's order, and whether ExoMAST went unasked."""

        async def produce() -> Artifact:
            refs = await self._listed(tic_id)
            return Artifact(orjson.dumps({"TCE": [r.id for r in refs]}), JSON_MEDIA_TYPE, self._dv.ttl_tce_list_s)

        return await self._dv.answer(MIRROR_TCES.key(tic_id), produce)

    async def info_response(self, tic_id: int, ref: TceRef, *, list_tce: bool) -> tuple[CachedBody, bool]:
        """Return the two DV headers (plus the TCE list when ``list_tce``), and whether ExoMAST went unasked."""

        async def produce() -> Artifact:
            refs = await self._listed_with(tic_id, ref)
            headers = await self._tce_data(tic_id, ref, self._dv.headers)
            payload: dict[str, Any] = {"DV Primary Header": headers.primary, "DV Data Header": headers.data}
            ttl_s = self._dv.ttl_dv_s
            if list_tce:
                payload["TCE"] = [r.id for r in refs]
                ttl_s = min(ttl_s, self._dv.ttl_tce_list_s)
            return Artifact(orjson.dumps(payload), JSON_MEDIA_TYPE, ttl_s)

        flag = ("list_tce",) if list_tce else ()
        return await self._dv.answer(MIRROR_INFO.key(tic_id, ref.id, *flag), produce)

    async def table_response(self, tic_id: int, ref: TceRef) -> tuple[CachedBody, bool]:
        """Return the DV time series as ``{"fields": [...], "data": [...]}``, and whether ExoMAST went unasked."""

        async def produce() -> Artifact:
            await self._listed_with(tic_id, ref)
            table = await self._tce_data(tic_id, ref, self._dv.table)
            payload = await run_blocking(upstream_table_json, table, limiter=self._limiters.cpu)
            return Artifact(payload, JSON_MEDIA_TYPE, self._dv.ttl_dv_s)

        return await self._dv.answer(MIRROR_TABLE.key(tic_id, ref.id), produce)

    async def phaseplot_response(self, tic_id: int, ref: TceRef, *, embed: bool) -> tuple[CachedBody, bool]:
        """Return the TCE's Bokeh phase plot (a page, or a fragment with ``embed``) and whether ExoMAST went unasked.

        Made from the cached DV table and kept as long as it is fresh, so a new table makes a new page.
        """

        async def produce() -> Artifact:
            await self._listed_with(tic_id, ref)
            table = await self._tce_data(tic_id, ref, self._dv.table)
            series = _phase_series(table)
            label = f"TIC {tic_id} ({ref.sectors.upper()}) {ref.tce}"
            render = partial(render_phaseplot_html, label=label, resources=self._bokeh, embed=embed)
            # The CPU pool, like table/'s JSON: building the page is mostly serialising the arrays (~0.2 s at most).
            html = await run_blocking(render, series, limiter=self._limiters.cpu)
            return Artifact(html.encode(), HTML_MEDIA_TYPE, self._dv.ttl_dv_s)

        flag = ("embed",) if embed else ()
        return await self._dv.answer(MIRROR_PHASEPLOT.key(tic_id, ref.id, *self._bokeh_key, *flag), produce)

    async def _listed(self, tic_id: int) -> list[TceRef]:
        try:
            return await self._dv.listed_tce_refs(tic_id)
        except NotFound as exc:
            raise UpstreamStyleError(404, f"No TESS DV data found for TIC {tic_id}") from exc

    async def _listed_with(self, tic_id: int, ref: TceRef) -> list[TceRef]:
        """Return the TIC's TCE list, which must hold ``ref``: the list answers "no such TCE" without asking."""
        refs = await self._listed(tic_id)
        if ref not in refs:
            raise _no_such_tce(tic_id, ref)
        return refs

    @staticmethod
    async def _tce_data(tic_id: int, ref: TceRef, fetch: Callable[[int, TceRef], Awaitable[T]]) -> T:
        try:
            return await fetch(tic_id, ref)
        except NotFound as exc:  # listed, yet ExoMAST has no DV data for it: say so as ExoMAST would
            raise _no_such_tce(tic_id, ref) from exc


def _phase_series(table: DvTable) -> PhaseSeries:
    """Return the columns the phase plot draws; BadUpstreamResponse when ExoMAST's table lacks one."""
    missing = [name for name in PHASEPLOT_COLUMNS if name not in table.columns]
    if missing:
        raise BadUpstreamResponse(
            f"ExoMAST's DV light curve lacks {', '.join(missing)}, so it cannot be phase-plotted.", upstream="ExoMAST"
        )
    return PhaseSeries(*(table.columns[name] for name in PHASEPLOT_COLUMNS))


def _no_such_tce(tic_id: int, ref: TceRef) -> UpstreamStyleError:
    return UpstreamStyleError(404, f"No {ref.tce} found for TIC {tic_id} in sectors {ref.sectors}")
