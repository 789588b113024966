"""Planning a cutout: which sectors observed a position, which one to cut, and the plan's cache identity."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import orjson

from service.errors import NotFound
from service.infra.cache import CachedBody
from service.schemas import CutoutSummary, SectorList
from service.services.artifacts import Artifact, ArtifactStore
from service.services.identity import Product, data_key
from service.services.targets import Target
from service.tpf import describe_tpf, stamp_tic
from service.upstream.tesscut import SectorCcd, TesscutClient

PIXEL_SCALE_DEG = 21 / 3600  # TESS pixels are 21 arcseconds

# TESS sectors follow each other every ~27.4 days from sector 1 (BTJD 1325.3); the real schedule drifts from this by
# a few days over the years, far less than the time between two sectors that observed the same star.
SECTOR_1_START_BTJD = 1325.3
SECTOR_SPACING_DAYS = 27.4

# The cutout as served: TESScut's file, stamped with the TIC, and its summary. Cutouts are large and their bytes
# change only when stamping or describing does, so those two functions (not the whole TPF module) are its makers.
CUTOUT = Product(
    "cutout", ("application/fits", "application/json"), (stamp_tic, describe_tpf), CutoutSummary, kind="cutout"
)
SECTORS = Product("sectors", ("application/json",), (), SectorList)


@dataclass(frozen=True)
class CutoutArgs:
    """Which cutout a request asks for (sector, side) and how long it waits for one that is not cached."""

    sector: int | None
    size_px: int
    wait_s: float | None


@dataclass(frozen=True)
class CutoutPlan:
    """Which sector to cut, from which candidate CCDs; its cache keys follow from it.

    A cutout is square (``size_px`` on a side) unless ``rows_px`` says otherwise: then it is ``rows_px`` rows by
    ``size_px`` columns (TESScut's y by x; only the TESScut mirror asks for rectangles).
    """

    target: Target
    size_px: int
    sector: int
    candidates: tuple[SectorCcd, ...]
    sector_pinned: bool
    rows_px: int | None = None

    @property
    def shape_px(self) -> tuple[int, int]:
        """Return (rows, columns)."""
        return (self.rows_px or self.size_px, self.size_px)

    @property
    def is_square(self) -> bool:
        """Return whether the cutout has as many rows as columns."""
        return self.rows_px in (None, self.size_px)

    @property
    def fits_key(self) -> str:
        """Return the cache key of the FITS file: target, size, sector and the candidate camera/CCDs."""
        ccds = "+".join(f"{c.camera}-{c.ccd}" for c in self.candidates)
        # A square is its side; a rectangle is "rows x columns", which no square key can be.
        size = str(self.size_px) if self.is_square else "{}x{}".format(*self.shape_px)
        return CUTOUT.key(self.target.cache_key, size, f"s{self.sector}", ccds)

    @property
    def summary_key(self) -> str:
        """Return the cache key of the JSON summary."""
        return self.fits_key + ":summary"

    @property
    def files_key(self) -> str:
        """Return the cache key of the manifest: every file TESScut returned that is kept, in its zip's order."""
        return self.fits_key + ":files"

    def other_file_key(self, name: str) -> str:
        """Return the cache key of a returned file other than the one served by `fits_key`."""
        return f"{self.fits_key}:also:{name}"


def plan_as_json(plan: CutoutPlan) -> dict[str, Any]:
    """Return ``plan`` as JSON-ready values (a queued job's arguments); `plan_from_json` reads them back."""
    return dataclasses.asdict(plan)


def plan_from_json(values: dict[str, Any]) -> CutoutPlan:
    """Return the plan `plan_as_json` wrote."""
    return CutoutPlan(
        target=Target(**values["target"]),
        size_px=int(values["size_px"]),
        sector=int(values["sector"]),
        candidates=tuple(SectorCcd(**ccd) for ccd in values["candidates"]),
        sector_pinned=bool(values["sector_pinned"]),
        rows_px=values.get("rows_px"),
    )


def estimated_sector_middle_btjd(sector: int) -> float:
    """Return the approximate middle of a sector in BTJD (for choosing a sector by time; verified afterwards)."""
    return SECTOR_1_START_BTJD + (sector - 1) * SECTOR_SPACING_DAYS + SECTOR_SPACING_DAYS / 2


def estimated_sector_span_btjd(sector: int, margin_days: float = 0.0) -> tuple[float, float]:
    """Return the approximate first and last times of a sector in BTJD, widened by ``margin_days`` each side.

    For estimates made before the cutout is read (how many frames a window holds); the cutout's own times rule.
    """
    middle = estimated_sector_middle_btjd(sector)
    half = SECTOR_SPACING_DAYS / 2 + margin_days
    return middle - half, middle + half


def sectors_json(hits: list[SectorCcd]) -> list[dict[str, Any]]:
    """Return the public JSON shape of sector hits."""
    return [{"sector": h.sector, "camera": h.camera, "ccd": h.ccd, "name": h.name} for h in hits]


def window_plan(plan: CutoutPlan, start_btjd: float, end_btjd: float, observed: list[SectorCcd]) -> CutoutPlan:
    """Return ``plan`` moved to the observed sector whose (estimated) time span is nearest the window."""
    if plan.sector_pinned:
        return plan
    middle = (start_btjd + end_btjd) / 2
    sector = min({h.sector for h in observed}, key=lambda s: abs(estimated_sector_middle_btjd(s) - middle))
    return dataclasses.replace(
        plan, sector=sector, candidates=tuple(h for h in observed if h.sector == sector), sector_pinned=False
    )


class CutoutPlanner:
    """Looks sectors up (cached) and turns a target, a size and maybe a sector into a `CutoutPlan`."""

    def __init__(self, store: ArtifactStore, tesscut: TesscutClient, *, ttl_sectors_s: int) -> None:
        self._store = store
        self._tesscut = tesscut
        self._ttl_sectors_s = ttl_sectors_s

    async def sectors(self, ra_deg: float, dec_deg: float, radius_deg: float = 0.0) -> list[SectorCcd]:
        """Return the sectors/cameras/CCDs whose FFIs cover a position, or any point within ``radius_deg`` (cached)."""
        radius = (f"r{radius_deg:.6f}",) if radius_deg else ()
        return await self._store.value(
            data_key("tesscut:sectors", f"{ra_deg:.6f},{dec_deg:.6f}", *radius),
            lambda: self._tesscut.sectors(ra_deg, dec_deg, radius_deg),
            encode=lambda hits: orjson.dumps([[h.sector, h.camera, h.ccd] for h in hits]),
            decode=lambda blob: [SectorCcd(*row) for row in orjson.loads(blob)],
            ttl_s=self._ttl_sectors_s,
        )

    async def sectors_response(self, target: Target, extra: dict[str, Any]) -> tuple[CachedBody, bool]:
        """Return the JSON sector list of a position."""

        async def produce() -> Artifact:
            hits = await self.sectors(target.ra_deg, target.dec_deg)
            body = {**extra, "ra_deg": target.ra_deg, "dec_deg": target.dec_deg, "sectors": sectors_json(hits)}
            return Artifact(SECTORS.json_body(body), "application/json", self._ttl_sectors_s)

        return await self._store.body(SECTORS.key(target.cache_key), produce)

    async def plan_every_sector(self, target: Target, size_px: int, *, rows_px: int | None = None) -> list[CutoutPlan]:
        """Return one plan per sector whose FFIs the cutout reaches, oldest first; 404 when none."""
        plan, hits = await self.plan_with_sectors(target, size_px, None, rows_px=rows_px)
        return [
            dataclasses.replace(
                plan, sector=sector, candidates=tuple(h for h in hits if h.sector == sector), sector_pinned=True
            )
            for sector in sorted({h.sector for h in hits})
        ]

    async def plan_with_sectors(
        self, target: Target, size_px: int, sector: int | None, *, rows_px: int | None = None
    ) -> tuple[CutoutPlan, list[SectorCcd]]:
        """Choose the sector (the requested one, else the latest) and its candidate CCDs; 404 when none.

        Also returns every sector/camera/CCD the cutout reaches. TESScut cuts every CCD that the cutout's area
        reaches, not only the one under its centre, so sectors are looked up within half the cutout's diagonal;
        the clean routes and the TESScut mirror then plan alike.
        """
        reach_deg = math.hypot(size_px, rows_px or size_px) / 2 * PIXEL_SCALE_DEG
        hits = await self.sectors(target.ra_deg, target.dec_deg, reach_deg)
        where = f"RA {target.ra_deg}, Dec {target.dec_deg}" + (f" (TIC {target.tic_id})" if target.tic_id else "")
        if not hits:
            raise NotFound(f"No TESS sector observed {where}: the position is on no detector.")
        observed = sorted({h.sector for h in hits})
        chosen = sector if sector is not None else observed[-1]
        if chosen not in observed:
            raise NotFound(
                f"Sector {chosen} did not observe {where}; sectors that did: {', '.join(map(str, observed))}.",
                extensions={"sectors": observed},
            )
        candidates = tuple(h for h in hits if h.sector == chosen)
        return CutoutPlan(target, size_px, chosen, candidates, sector_pinned=sector is not None, rows_px=rows_px), hits
