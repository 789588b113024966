"""Where a TIC is on the sky: explicit coordinates, else the DV header when it has TCEs, else the TIC catalog."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from service.errors import NotFound, UpstreamError
from service.services.artifacts import ArtifactStore
from service.services.dv import DvService
from service.services.identity import data_key
from service.upstream.catalogs import TicCatalogClient, TicEntry

PositionSource = Literal["request", "dv", "catalog"]


@dataclass(frozen=True)
class Target:
    """A position to cut out, and the TIC it belongs to when there is one."""

    ra_deg: float
    dec_deg: float
    tic_id: int | None = None
    tessmag: float | None = None
    source: PositionSource = "request"

    @property
    def cache_key(self) -> str:
        """Return the normalised identity of this target for cache keys (positions to 1e-6 deg ≈ 4 mas)."""
        position = f"{self.ra_deg:.6f},{self.dec_deg:.6f}"
        return f"tic{self.tic_id}@{position}" if self.tic_id is not None else position


# Where a product's target comes from, resolved when the product is planned (it may need MAST).
TargetSource = Callable[[], Awaitable[Target]]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _first_number(*values: Any) -> float | None:
    """Return the first value that is a finite number (0.0 included)."""
    return next((n for n in map(_number, values) if n is not None), None)


class TargetResolver:
    """Resolves TIC ids to positions, preferring what the DV products already say."""

    def __init__(self, store: ArtifactStore, dv: DvService, catalog: TicCatalogClient, *, ttl_s: int) -> None:
        self._store = store
        self._dv = dv
        self._catalog = catalog
        self._ttl_s = ttl_s

    async def _from_dv(self, tic_id: int) -> Target | None:
        try:
            refs = await self._dv.tce_refs(tic_id)
            headers = await self._dv.headers(tic_id, refs[0])
        except (NotFound, UpstreamError):
            return None  # no TCEs, or ExoMAST is down: the catalog can still place the star
        ra = _first_number(headers.data.get("RA_OBJ"), headers.primary.get("RA_OBJ"))
        dec = _first_number(headers.data.get("DEC_OBJ"), headers.primary.get("DEC_OBJ"))
        if ra is None or dec is None or not (0 <= ra < 360 and -90 <= dec <= 90):
            return None
        return Target(ra, dec, tic_id, _number(headers.primary.get("TESSMAG")), "dv")

    async def _from_catalog(self, tic_id: int) -> Target | None:
        async def lookup() -> TicEntry | None:
            return await self._catalog.lookup(tic_id)

        entry = await self._store.value(
            data_key("catalog:tic", tic_id),
            lookup,
            encode=lambda e: orjson.dumps(e.__dict__ if e else None),
            decode=lambda blob: TicEntry(**data) if (data := orjson.loads(blob)) else None,
            ttl_s=self._ttl_s,
        )
        return Target(entry.ra_deg, entry.dec_deg, tic_id, entry.tessmag, "catalog") if entry else None

    async def for_tic(self, tic_id: int, at: Target | None = None) -> Target:
        """Return where to cut out for ``tic_id``: the position ``at`` if given, else the DV header, else the TIC."""
        if at is not None:
            # The position is given; the TIC only adds its TESS magnitude to the header, so that is best-effort.
            try:
                found = await self._from_dv(tic_id) or await self._from_catalog(tic_id)
            except UpstreamError:
                found = None
            return Target(at.ra_deg, at.dec_deg, tic_id, found.tessmag if found else None, "request")
        found = await self._from_dv(tic_id) or await self._from_catalog(tic_id)
        if found is None:
            raise NotFound(
                f"TIC {tic_id} was found neither in ExoMAST's DV data nor in the TESS Input Catalog; "
                "pass ra= and dec= to cut out at a position."
            )
        return found

    def of_tic(self, tic_id: int, at: Target | None = None) -> TargetSource:
        """Return what resolves ``tic_id``'s target (`for_tic`) when planning asks for it."""
        return lambda: self.for_tic(tic_id, at)

    @staticmethod
    def at(target: Target) -> TargetSource:
        """Return a target source for a position given outright."""

        async def given() -> Target:
            return target

        return given
