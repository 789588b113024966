"""MAST's catalog service: a TIC id's position and TESS magnitude, and the catalogued stars around a position.

The services are ``Mast.Catalogs.Filtered.Tic`` (by id) and ``Mast.Catalogs.Filtered.Tic.Position`` (a cone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx
import orjson

from service.errors import BadUpstreamResponse
from service.upstream.http import Budget, UpstreamBody, request_bytes
from service.upstream.resilience import UpstreamGuard, time_left_s

UPSTREAM = "MAST TIC catalog"


@dataclass(frozen=True)
class TicEntry:
    """What the TESS Input Catalog says about one target."""

    tic_id: int
    ra_deg: float
    dec_deg: float
    tessmag: float | None


def tic_request(tic_id: int) -> dict[str, str]:
    """Return the form body of a TIC lookup by id, as MAST's ``/api/v0/invoke`` takes it."""
    request = {
        "service": "Mast.Catalogs.Filtered.Tic",
        "format": "json",
        "params": {"columns": "ID,ra,dec,Tmag", "filters": [{"paramName": "ID", "values": [str(tic_id)]}]},
        "pagesize": 10,
        "page": 1,
    }
    return {"request": orjson.dumps(request).decode()}


def tic_cone_request(ra_deg: float, dec_deg: float, radius_deg: float, max_tmag: float, most: int) -> dict[str, str]:
    """Return the form body of a cone search for TIC stars brighter than ``max_tmag`` (at most ``most`` rows)."""
    request = {
        "service": "Mast.Catalogs.Filtered.Tic.Position",
        "format": "json",
        "params": {
            "columns": "ID,ra,dec,Tmag",
            "filters": [{"paramName": "Tmag", "values": [{"min": -5.0, "max": max_tmag}]}],
            "ra": ra_deg,
            "dec": dec_deg,
            "radius": radius_deg,
        },
        "pagesize": most,
        "page": 1,
    }
    return {"request": orjson.dumps(request).decode()}


def parse_tic_rows(payload: object, tic_id: int) -> TicEntry | None:
    """Return the catalog entry for ``tic_id`` from an invoke answer, or None when the catalog has none."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise BadUpstreamResponse("The TIC catalog's answer has no 'data' list.", upstream=UPSTREAM)
    if str(payload.get("status", "COMPLETE")).upper() == "ERROR":
        raise BadUpstreamResponse(f"The TIC catalog reported an error: {payload.get('msg')}", upstream=UPSTREAM)
    for row in payload["data"]:
        if isinstance(row, dict) and str(row.get("ID")) == str(tic_id):
            ra, dec = _finite(row.get("ra")), _finite(row.get("dec"))
            if ra is None or dec is None or not (0 <= ra < 360 and -90 <= dec <= 90):
                raise BadUpstreamResponse(
                    f"The TIC catalog gives TIC {tic_id} no valid position "
                    f"(ra={row.get('ra')!r}, dec={row.get('dec')!r}).",
                    upstream=UPSTREAM,
                )
            return TicEntry(tic_id, ra, dec, _finite(row.get("Tmag")))
    return None


def parse_cone_rows(payload: object) -> list[TicEntry]:
    """Return the stars of a cone search answer; rows without an id or a valid position are left out."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise BadUpstreamResponse("The TIC catalog's answer has no 'data' list.", upstream=UPSTREAM)
    if str(payload.get("status", "COMPLETE")).upper() == "ERROR":
        raise BadUpstreamResponse(f"The TIC catalog reported an error: {payload.get('msg')}", upstream=UPSTREAM)
    stars = []
    for row in payload["data"]:
        if not isinstance(row, dict) or not str(row.get("ID", "")).isdigit():
            continue
        ra, dec = _finite(row.get("ra")), _finite(row.get("dec"))
        if ra is not None and dec is not None and 0 <= ra < 360 and -90 <= dec <= 90:
            stars.append(TicEntry(int(str(row["ID"])), ra, dec, _finite(row.get("Tmag"))))
    return stars


def _finite(value: object) -> float | None:
    """Return a finite number, or None for anything else (booleans, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class TicCatalogClient:
    """Looks TIC ids up in MAST's catalog service over the shared MAST `httpx.AsyncClient`.

    The lookup is a POST, but a read-only query: it goes through ``guard`` and is retried like a GET.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        mast_url: str,
        guard: UpstreamGuard,
        budget: Budget,
    ) -> None:
        self._client = client
        self._url = f"{mast_url}/api/v0/invoke"
        self._guard = guard
        self._budget = budget

    async def lookup(self, tic_id: int) -> TicEntry | None:
        """Return the TIC entry, or None when the catalog does not know the id."""

        async def attempt(deadline: float) -> UpstreamBody:
            return await request_bytes(
                self._client,
                "POST",
                self._url,
                self._budget.capped(time_left_s(deadline)),
                data=tic_request(tic_id),
            )

        body = await self._guard.call("catalog", attempt)
        return parse_tic_rows(parse_json_small(body.content), tic_id)

    async def cone(
        self, ra_deg: float, dec_deg: float, radius_deg: float, *, max_tmag: float, most: int
    ) -> list[TicEntry]:
        """Return the TIC stars within ``radius_deg`` of (RA, Dec) brighter than ``max_tmag`` (at most ``most``)."""

        async def attempt(deadline: float) -> UpstreamBody:
            return await request_bytes(
                self._client,
                "POST",
                self._url,
                self._budget.capped(time_left_s(deadline)),
                data=tic_cone_request(ra_deg, dec_deg, radius_deg, max_tmag, most),
            )

        body = await self._guard.call("catalog", attempt)
        return parse_cone_rows(parse_json_small(body.content))


def parse_json_small(content: bytes) -> object:
    """Parse a small JSON body (a row is a few hundred bytes, a cone a few hundred rows: fine on the event loop)."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise BadUpstreamResponse("The TIC catalog sent malformed JSON.", upstream=UPSTREAM) from exc
