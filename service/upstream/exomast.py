"""ExoMAST API v0.1 client for TESS Data Validation products: TCE lists, DV headers, DV time series."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from service.errors import BadUpstreamResponse, NotFound
from service.infra.threads import run_blocking
from service.upstream.http import UpstreamBody, parse_json, request_bytes
from service.upstream.resilience import GuardedClient, time_left_s

UPSTREAM = "ExoMAST"

# Units of the DV time-series columns, from the DVT FITS format (ExoMAST's JSON does not carry them).
DV_COLUMN_UNITS = {
    "TIME": "BJD - 2457000, days",
    "TIMECORR": "d",
    "PHASE": "days",
    "LC_INIT": "dimensionless",
    "LC_INIT_ERR": "dimensionless",
    "LC_WHITE": "dimensionless",
    "LC_DETREND": "dimensionless",
    "MODEL_INIT": "dimensionless",
    "MODEL_WHITE": "dimensionless",
}


@dataclass(frozen=True)
class DvField:
    """One column of a DV table as ExoMAST describes it."""

    name: str
    datatype: str
    description: str

    @property
    def unit(self) -> str | None:
        """Return the column's unit, when the DVT format defines one."""
        return DV_COLUMN_UNITS.get(self.name)


@dataclass(frozen=True)
class DvTable:
    """A DV time series, column-oriented: floats are float64 with NaN for missing, ints int64, text str."""

    fields: tuple[DvField, ...]
    columns: dict[str, np.ndarray]

    @property
    def n_rows(self) -> int:
        """Return the number of rows."""
        return len(next(iter(self.columns.values()))) if self.columns else 0


@dataclass(frozen=True)
class DvHeaders:
    """The two FITS headers ExoMAST returns for a TCE, keyword → value."""

    primary: dict[str, Any]
    data: dict[str, Any]


def _column_array(values: list[Any], datatype: str) -> np.ndarray:
    kind = datatype.strip().lower()
    if kind in ("int", "integer", "bigint", "smallint", "long"):
        if any(v is None for v in values):
            return np.array(values, dtype=np.float64)
        return np.array(values, dtype=np.int64)
    if kind in ("real", "float", "double", "double precision"):
        return np.array(values, dtype=np.float64)
    return np.array(["" if v is None else str(v) for v in values], dtype=str)


def parse_dv_table(payload: Any) -> DvTable:
    """Turn ExoMAST's ``{"fields": [...], "data": [...]}`` into a column-oriented `DvTable` (blocking)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("fields"), list):
        raise BadUpstreamResponse("ExoMAST's DV table has no 'fields' list.", upstream=UPSTREAM)
    rows = payload.get("data")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise BadUpstreamResponse("ExoMAST's DV table has no 'data' list of rows.", upstream=UPSTREAM)
    fields: list[DvField] = []
    columns: dict[str, np.ndarray] = {}
    for raw in payload["fields"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("colname"), str):
            raise BadUpstreamResponse("ExoMAST's DV table has a field without a colname.", upstream=UPSTREAM)
        # Tutorials strip column names: upstream has padded them before.
        raw_name = raw["colname"]
        field = DvField(raw_name.strip(), str(raw.get("datatype", "")), str(raw.get("description", "")))
        if field.name in columns or not field.name:
            raise BadUpstreamResponse(f"ExoMAST's DV table names column '{field.name}' twice.", upstream=UPSTREAM)
        try:
            values = _column_array([row.get(raw_name) for row in rows], field.datatype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadUpstreamResponse(
                f"ExoMAST's DV column {field.name} does not hold {field.datatype} values.", upstream=UPSTREAM
            ) from exc
        if values.ndim != 1:
            raise BadUpstreamResponse(f"ExoMAST's DV column {field.name} holds lists, not values.", upstream=UPSTREAM)
        columns[field.name] = values
        fields.append(field)
    return DvTable(tuple(fields), columns)


def encode_dv_table(table: DvTable) -> bytes:
    """Serialise a `DvTable` compactly for the disk cache (uncompressed .npz: fast to load)."""
    buffer = io.BytesIO()
    fields = orjson.dumps([f.__dict__ for f in table.fields])
    arrays: dict[str, Any] = {"__fields__": np.frombuffer(fields, dtype=np.uint8), **table.columns}
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_dv_table(blob: bytes) -> DvTable:
    """Inverse of `encode_dv_table`."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        fields = tuple(DvField(**f) for f in orjson.loads(npz["__fields__"].tobytes()))
        return DvTable(fields, {f.name: npz[f.name] for f in fields})


class ExoMastClient(GuardedClient):
    """Talks to ExoMAST over one shared `httpx.AsyncClient`; parsing runs in worker threads.

    Every GET goes through ``guard``: retried on transient failures within one deadline, refused at once while
    ExoMAST's breaker is open.
    """

    async def _get_json(self, endpoint: str, path: str, params: dict[str, str] | None = None) -> Any:
        async def attempt(deadline: float) -> UpstreamBody:
            return await request_bytes(
                self._client,
                "GET",
                self._url + path,
                self._budget.capped(time_left_s(deadline)),
                params=params,
            )

        body = await self._guard.call(endpoint, attempt)
        return await run_blocking(parse_json, body, UPSTREAM, limiter=self._limiters.cpu)

    async def tce_ids(self, tic_id: int) -> list[str]:
        """Return the TCE ids of a TIC as ExoMAST lists them, e.g. ``["s0001-s0001:TCE_1"]``."""
        try:
            payload = await self._get_json("tces", f"dvdata/tess/{tic_id}/tces/")
        except NotFound as exc:
            raise NotFound(f"TIC {tic_id} has no TESS Data Validation results at ExoMAST ({exc.detail}).") from exc
        tces = payload.get("TCE") if isinstance(payload, dict) else None
        if not isinstance(tces, list) or not all(isinstance(t, str) for t in tces):
            raise BadUpstreamResponse("ExoMAST's TCE list has no 'TCE' list of strings.", upstream=UPSTREAM)
        return list(tces)

    async def dv_headers(self, tic_id: int, sectors: str, tce: str) -> DvHeaders:
        """Return the DV primary and data headers of one TCE."""
        payload = await self._get_json("info", f"dvdata/tess/{tic_id}/info/", {"tce": tce, "sector": sectors})
        primary = payload.get("DV Primary Header") if isinstance(payload, dict) else None
        data = payload.get("DV Data Header") if isinstance(payload, dict) else None
        if not isinstance(primary, dict) or not isinstance(data, dict):
            raise BadUpstreamResponse("ExoMAST's DV info lacks the two DV headers.", upstream=UPSTREAM)
        return DvHeaders(primary, data)

    async def dv_table(self, tic_id: int, sectors: str, tce: str) -> DvTable:
        """Return the DV time series of one TCE; JSON parsing runs in a CPU worker thread."""
        payload = await self._get_json("table", f"dvdata/tess/{tic_id}/table/", {"tce": tce, "sector": sectors})
        return await run_blocking(parse_dv_table, payload, limiter=self._limiters.cpu)
