"""Data Validation products: TCE lists, TCE summaries and DV light curves, cached and coalesced.

The response methods report ``hit`` as "answered without asking ExoMAST" (what ``X-Cache: HIT`` means on the DV
routes): the response itself was cached, or it was made from cached data alone, such as a CSV after the JSON of
the same light curve, or a light curve after the ExoMAST mirror served that TCE's table.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from service.errors import BadUpstreamResponse, NotFound
from service.infra.cache import CachedBody
from service.rendering import lightcurve_tables
from service.rendering.lightcurve_tables import ColumnInfo, LightCurveTable
from service.schemas import TceList, TceSummary, TceSummaryValues
from service.services.artifacts import Artifact, upstream_ledger
from service.services.identity import Product, data_key
from service.services.workshop import Workshop
from service.tces import TceRef, parse_tce_id, resolve_tce
from service.upstream.exomast import DvHeaders, DvTable, ExoMastClient, decode_dv_table, encode_dv_table

# (summary field, header, keyword): the normalised view of a TCE; the data header wins for RA/Dec.
_SUMMARY_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("object", "primary", "OBJECT"),
    ("period_days", "data", "TPERIOD"),
    ("epoch_btjd", "data", "TEPOCH"),
    ("depth_ppm", "data", "TDEPTH"),
    ("duration_hours", "data", "TDUR"),
    ("ingress_hours", "data", "INDUR"),
    ("snr", "data", "TSNR"),
    ("max_mes", "data", "MAXMES"),
    ("max_ses", "data", "MAXSES"),
    ("impact_parameter", "data", "IMPACT"),
    ("inclination_deg", "data", "INCLIN"),
    ("a_over_rstar", "data", "DRRATIO"),
    ("rp_over_rstar", "data", "RADRATIO"),
    ("planet_radius_earth", "data", "PRADIUS"),
    ("n_transits", "data", "NTRANS"),
    ("ra_deg", "data", "RA_OBJ"),
    ("dec_deg", "data", "DEC_OBJ"),
    ("tessmag", "primary", "TESSMAG"),
    ("teff_k", "primary", "TEFF"),
    ("logg_cgs", "primary", "LOGG"),
    ("metallicity_dex", "primary", "MH"),
    ("star_radius_solar", "primary", "RADIUS"),
    ("pm_ra_mas_per_yr", "primary", "PMRA"),
    ("pm_dec_mas_per_yr", "primary", "PMDEC"),
)


def tce_json(ref: TceRef) -> dict[str, Any]:
    """Return the public JSON shape of one TCE reference."""
    return {
        "id": ref.id,
        "sectors": ref.sectors,
        "first_sector": ref.first_sector,
        "last_sector": ref.last_sector,
        "tce": ref.tce,
        "number": ref.number,
    }


def summarize_tce(tic_id: int, ref: TceRef, headers: DvHeaders) -> dict[str, Any]:
    """Return the normalised TCE summary plus both headers as ExoMAST gave them."""
    sources = {"primary": headers.primary, "data": headers.data}
    summary = {name: sources[where].get(keyword) for name, where, keyword in _SUMMARY_FIELDS}
    for name, keyword in (("ra_deg", "RA_OBJ"), ("dec_deg", "DEC_OBJ")):
        if summary[name] is None:
            summary[name] = headers.primary.get(keyword)
    # The headers are passed on as given, but the summary keeps its documented types: odd values become null.
    for name, value in summary.items():
        kind = TceSummaryValues.model_fields[name].annotation
        expected = str if kind == str | None else int if kind == int | None else float
        ok = isinstance(value, expected) and not isinstance(value, bool)
        if expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        summary[name] = value if ok else None
    return {
        "tic_id": tic_id,
        "tce": tce_json(ref),
        "summary": summary,
        "dv_primary_header": headers.primary,
        "dv_data_header": headers.data,
    }


TCE_LIST = Product("tces", ("application/json",), (tce_json,), TceList)
TCE_SUMMARY = Product("tce", ("application/json",), (summarize_tce,), TceSummary)


def _read_only(table: DvTable) -> DvTable:
    """Return ``table`` with its arrays made read-only: the cache shares a decoded table between requests."""
    for values in table.columns.values():
        values.flags.writeable = False
    return table


def lightcurve_table(table: DvTable) -> LightCurveTable:
    """Return a DV table as rendering's light-curve table; the column arrays are shared, not copied."""
    fields = tuple(ColumnInfo(f.name, f.unit, f.description, f.datatype) for f in table.fields)
    return LightCurveTable(fields, table.columns)


def select_lightcurve(
    table: DvTable, columns: list[str] | None, start_btjd: float | None, end_btjd: float | None
) -> LightCurveTable:
    """Return the DV table's rows in [start, end] and only ``columns`` (all when None), ready to render.

    Raises BadUpstreamResponse when a window is asked and ExoMAST's table has no numeric TIME column.
    """
    try:
        return lightcurve_tables.select_rows_and_columns(lightcurve_table(table), columns, start_btjd, end_btjd)
    except lightcurve_tables.MissingTimeColumn as exc:
        raise BadUpstreamResponse(
            "ExoMAST's DV table has no numeric TIME column, so it cannot be cut to start/end.", upstream="ExoMAST"
        ) from exc


class DvService:
    """Answers the DV routes from the cache, asking ExoMAST only on a miss."""

    def __init__(self, workshop: Workshop, exomast: ExoMastClient, *, ttl_tce_list_s: int, ttl_dv_s: int) -> None:
        self._store = workshop.store
        self._limiters = workshop.limiters
        self._exomast = exomast
        self.ttl_tce_list_s = ttl_tce_list_s  # how long TCE lists stay fresh
        self.ttl_dv_s = ttl_dv_s  # how long DV headers and time series stay fresh

    # --- data: what ExoMAST said, normalised -------------------------------------------------------------

    async def tce_refs(self, tic_id: int) -> list[TceRef]:
        """Return the TIC's TCEs, sorted; NotFound when it has none."""
        return sorted(await self.listed_tce_refs(tic_id))

    async def listed_tce_refs(self, tic_id: int) -> list[TceRef]:
        """Return the TIC's TCEs in ExoMAST's order (clients take ``[0]``); NotFound when it has none."""

        async def fetch() -> list[TceRef]:
            raw = await self._exomast.tce_ids(tic_id)
            refs = list(dict.fromkeys(ref for ref in map(parse_tce_id, raw) if ref is not None))
            if raw and not refs:
                # A list we cannot read (e.g. the pre-2019 'TCE_1' form, which needs no sector) must not be
                # cached as "no TCEs".
                raise BadUpstreamResponse(
                    f"ExoMAST listed TCEs for TIC {tic_id} in a form we do not understand: {raw[:3]}.",
                    upstream="ExoMAST",
                )
            return refs

        refs = await self._store.value(
            # v2: ExoMAST's own order (entries before it were sorted and must not be read as upstream order).
            data_key("exomast:tces:v2", tic_id),
            fetch,
            encode=lambda refs: orjson.dumps([r.id for r in refs]),
            decode=lambda blob: [ref for ref in map(parse_tce_id, orjson.loads(blob)) if ref is not None],
            ttl_s=self.ttl_tce_list_s,
        )
        if not refs:
            raise NotFound(f"TIC {tic_id} has no Threshold Crossing Events in ExoMAST's TESS DV data.")
        return refs

    async def resolve(self, tic_id: int, tce_id: str) -> TceRef:
        """Return the TCE ``tce_id`` names for this TIC (404 unknown, 409 ambiguous)."""
        return resolve_tce(await self.tce_refs(tic_id), tce_id, tic_id)

    async def headers(self, tic_id: int, ref: TceRef) -> DvHeaders:
        """Return the DV headers of one TCE."""
        return await self._store.value(
            data_key("exomast:info", tic_id, ref.id),
            lambda: self._exomast.dv_headers(tic_id, ref.sectors, ref.tce),
            encode=lambda h: orjson.dumps({"primary": h.primary, "data": h.data}),
            decode=lambda blob: DvHeaders(**orjson.loads(blob)),
            ttl_s=self.ttl_dv_s,
        )

    async def table(self, tic_id: int, ref: TceRef) -> DvTable:
        """Return the DV time series of one TCE (its arrays read-only: it may be shared with other requests)."""

        async def fetch() -> DvTable:
            return _read_only(await self._exomast.dv_table(tic_id, ref.sectors, ref.tce))

        return await self._store.value(
            data_key("exomast:table", tic_id, ref.id),
            fetch,
            encode=encode_dv_table,
            decode=lambda blob: _read_only(decode_dv_table(blob)),
            ttl_s=self.ttl_dv_s,
        )

    # --- responses: bytes as served ----------------------------------------------------------------------

    async def answer(self, key: str, produce: Callable[[], Awaitable[Artifact]]) -> tuple[CachedBody, bool]:
        """Return the response cached under ``key`` (produced on a miss) and whether ExoMAST went unasked.

        ``produce`` must get its ExoMAST data through the data methods above, which is how asking is noticed.
        """
        with upstream_ledger() as ledger:
            body, _ = await self._store.body(key, produce)
        return body, not ledger.asked_upstream

    async def tce_list_response(self, tic_id: int) -> tuple[CachedBody, bool]:
        """Return the JSON list of a TIC's TCEs."""

        async def produce() -> Artifact:
            refs = await self.tce_refs(tic_id)
            body = TCE_LIST.json_body({"tic_id": tic_id, "tces": [tce_json(r) for r in refs]})
            return Artifact(body, "application/json", self.ttl_tce_list_s)

        return await self.answer(TCE_LIST.key(tic_id), produce)

    async def canonical_ref(self, tic_id: int, tce_id: str) -> tuple[TceRef | None, str]:
        """Return (ref or None, cache-key id): a full id keys the cache directly, a short one is resolved first."""
        full = parse_tce_id(tce_id)
        if full is not None:
            return None, full.id
        ref = await self.resolve(tic_id, tce_id)
        return ref, ref.id

    async def tce_summary_response(self, tic_id: int, tce_id: str) -> tuple[CachedBody, bool]:
        """Return the JSON summary of one TCE."""
        with upstream_ledger() as resolving:  # a short id may need the TCE list from ExoMAST
            ref, key_id = await self.canonical_ref(tic_id, tce_id)

        async def produce() -> Artifact:
            resolved = ref or await self.resolve(tic_id, key_id)
            body = TCE_SUMMARY.json_body(summarize_tce(tic_id, resolved, await self.headers(tic_id, resolved)))
            return Artifact(body, "application/json", self.ttl_dv_s)

        body, hit = await self.answer(TCE_SUMMARY.key(tic_id, key_id), produce)
        return body, hit and not resolving.asked_upstream
