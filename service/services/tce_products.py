"""Products made from one TCE's DV data (light-curve tables, plots, and whatever comes next).

A `TceProduct` is a declaration (`Product`) and a pure function that makes bytes from the TCE's DV time series
(and its headers when the product needs them). `TceProducts` does the rest for every such product: the cache key
from the declaration, the lookup, single-flight, fetching the DV data through `DvService` (cached, coalesced),
stale-if-error, and where the making runs: the CPU pool, or the render pool with its admission (`Overloaded` at
once when it is full; identical work already under way is joined, never refused).

``hit`` means "answered without asking ExoMAST" (what ``X-Cache: HIT`` means on the DV routes) unless a product
says it means "found in the cache" (plots, which have always said so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from service.infra.threads import Admission, run_blocking
from service.services.answers import Found
from service.services.artifacts import Artifact, upstream_ledger
from service.services.dv import DvService
from service.services.identity import Product
from service.services.pools import overloaded_when_full
from service.services.workshop import Workshop
from service.tces import TceRef
from service.upstream.exomast import DvHeaders, DvTable

Q = TypeVar("Q")


@dataclass(frozen=True)
class TceData:
    """What a TCE product is made from: the TCE, its DV time series, and its DV headers when asked for."""

    tic_id: int
    ref: TceRef
    table: DvTable
    headers: DvHeaders | None


@dataclass(frozen=True)
class Made:
    """Bytes a product made, with their media type and any headers they are served with."""

    payload: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


def _no_headers(params: object) -> bool:
    return False


@dataclass(frozen=True)
class TceProduct(Generic[Q]):
    """A product made from one TCE's DV data: ``make(data, params)`` runs in a worker thread, pure."""

    product: Product
    make: Callable[[TceData, Q], Made]
    needs_headers: Callable[[Q], bool] = _no_headers
    renders: bool = False  # made in the render pool (plots), else in the CPU pool
    hit_is_cached: bool = False  # X-Cache: HIT means "found in the cache" rather than "ExoMAST not asked"


class TceProducts:
    """Answers every TCE product from the cache, making it from cached DV data on a miss."""

    def __init__(self, workshop: Workshop, dv: DvService, *, render_pool: Admission) -> None:
        self.render_pool = render_pool
        self._store = workshop.store
        self._limiters = workshop.limiters
        self._dv = dv

    async def answer(self, product: TceProduct[Q], tic_id: int, tce_id: str, params: Q) -> Found:
        """Return ``product`` for this TCE and these parameters, cached under a key built from its declaration."""
        with upstream_ledger() as resolving:  # a short id may need the TCE list from ExoMAST
            ref, key_id = await self._dv.canonical_ref(tic_id, tce_id)

        async def produce() -> Artifact:
            if product.renders:
                # Only the request that starts a render gets here; identical ones wait for it in the single-flight.
                with overloaded_when_full():
                    self.render_pool.refuse_if_full()
            resolved = ref or await self._dv.resolve(tic_id, key_id)
            if product.needs_headers(params):
                table, headers = await asyncio.gather(
                    self._dv.table(tic_id, resolved), self._dv.headers(tic_id, resolved)
                )
            else:
                table, headers = await self._dv.table(tic_id, resolved), None  # no render place held meanwhile
            data = TceData(tic_id, resolved, table, headers)
            if product.renders:
                with overloaded_when_full(), self.render_pool.admitted_work():
                    made = await run_blocking(product.make, data, params, limiter=self._limiters.render)
            else:
                made = await run_blocking(product.make, data, params, limiter=self._limiters.cpu)
            # Made from DV data: fresh as long as that data is.
            return Artifact(made.payload, made.media_type, self._dv.ttl_dv_s, made.headers)

        key = product.product.key(tic_id, key_id, params)
        if product.hit_is_cached:
            body, hit = await self._store.body(key, produce)
            return Found(body, hit)
        body, hit = await self._dv.answer(key, produce)
        return Found(body, hit and not resolving.asked_upstream)
