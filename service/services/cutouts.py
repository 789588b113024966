"""FFI cutouts: sector lookups, cutout jobs that download through TESScut, and their cached answers."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from service.errors import BadUpstreamResponse, InsufficientStorage, NotFound
from service.infra.cache import CachedBody, DiskCache
from service.infra.threads import Limiters, run_blocking
from service.services.artifacts import Artifact, ArtifactStore, Ready
from service.services.jobs import Job, JobRegistry
from service.services.targets import Target
from service.tpf import contains_target, describe_tpf, stamp_tic
from service.upstream.tesscut import SectorHit, TesscutClient

CutoutFormat = Literal["fits", "json"]
CUTOUT_VERSION = "v1"


@dataclass(frozen=True)
class CutoutPlan:
    """Which sector to cut, from which candidate CCDs; its cache keys follow from it."""

    target: Target
    size_px: int
    sector: int
    candidates: tuple[SectorHit, ...]
    sector_pinned: bool

    @property
    def fits_key(self) -> str:
        """Return the cache key of the FITS file: target, size, sector and the candidate camera/CCDs."""
        ccds = "+".join(f"{c.camera}-{c.ccd}" for c in self.candidates)
        return f"cutout:{CUTOUT_VERSION}:{self.target.cache_key}:{self.size_px}:s{self.sector}:{ccds}"

    @property
    def summary_key(self) -> str:
        """Return the cache key of the JSON summary."""
        return self.fits_key + ":summary"


# TESS sectors follow each other every ~27.4 days from sector 1 (BTJD 1325.3); the real schedule drifts from this by
# a few days over the years, far less than the time between two sectors that observed the same star.
SECTOR_1_START_BTJD = 1325.3
SECTOR_SPACING_DAYS = 27.4


def estimated_sector_middle_btjd(sector: int) -> float:
    """Return the approximate middle of a sector in BTJD (for choosing a sector by time; verified afterwards)."""
    return SECTOR_1_START_BTJD + (sector - 1) * SECTOR_SPACING_DAYS + SECTOR_SPACING_DAYS / 2


def sectors_json(hits: list[SectorHit]) -> list[dict[str, Any]]:
    """Return the public JSON shape of sector hits."""
    return [{"sector": h.sector, "camera": h.camera, "ccd": h.ccd, "name": h.name} for h in hits]


def _zip_bytes(directory: Path) -> int:
    """Return the bytes received from TESScut so far: the size of the zip being downloaded."""
    return sum(entry.stat().st_size for entry in directory.glob("*.zip"))


class CutoutService:
    """Answers cutout requests from the cache, or through a job that downloads from TESScut."""

    def __init__(
        self,
        store: ArtifactStore,
        cache: DiskCache,
        tesscut: TesscutClient,
        jobs: JobRegistry,
        limiters: Limiters,
        *,
        ttl_sectors_s: int,
        ttl_cutout_s: int,
    ) -> None:
        self._store = store
        self._cache = cache
        self._tesscut = tesscut
        self._jobs = jobs
        self._limiters = limiters
        self._ttl_sectors_s = ttl_sectors_s
        self._ttl_cutout_s = ttl_cutout_s
        self._scratch = cache.directory / "incoming"

    def clear_scratch(self) -> None:
        """Remove download leftovers of a previous process (blocking; call once at start-up).

        Downloads land in scratch directories and only reach the cache whole; a process killed mid-download
        leaves its directory behind, and nothing ever serves from there.
        """
        shutil.rmtree(self._scratch, ignore_errors=True)

    async def sectors(self, ra_deg: float, dec_deg: float) -> list[SectorHit]:
        """Return the sectors/cameras/CCDs that observed a position (cached)."""
        return await self._store.value(
            f"tesscut:sectors:{ra_deg:.6f},{dec_deg:.6f}",
            lambda: self._tesscut.sectors(ra_deg, dec_deg),
            encode=lambda hits: orjson.dumps([[h.sector, h.camera, h.ccd] for h in hits]),
            decode=lambda blob: [SectorHit(*row) for row in orjson.loads(blob)],
            ttl_s=self._ttl_sectors_s,
        )

    async def sectors_response(self, target: Target, extra: dict[str, Any]) -> tuple[CachedBody, bool]:
        """Return the JSON sector list of a position."""

        async def produce() -> Artifact:
            hits = await self.sectors(target.ra_deg, target.dec_deg)
            body = {**extra, "ra_deg": target.ra_deg, "dec_deg": target.dec_deg, "sectors": sectors_json(hits)}
            return Artifact(orjson.dumps(body), "application/json", self._ttl_sectors_s)

        return await self._store.body(f"resp:v1:sectors:{target.cache_key}", produce)

    async def plan(self, target: Target, size_px: int, sector: int | None) -> CutoutPlan:
        """Choose the sector (the requested one, else the latest) and its candidate CCDs; 404 when none."""
        return (await self.plan_with_sectors(target, size_px, sector))[0]

    async def plan_with_sectors(
        self, target: Target, size_px: int, sector: int | None
    ) -> tuple[CutoutPlan, list[SectorHit]]:
        """Like `plan`, also returning every sector/camera/CCD that observed the target."""
        hits = await self.sectors(target.ra_deg, target.dec_deg)
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
        return CutoutPlan(target, size_px, chosen, candidates, sector_pinned=sector is not None), hits

    async def cached(self, plan: CutoutPlan, fmt: CutoutFormat) -> Ready | None:
        """Return the cached answer for ``plan`` in ``fmt``, or None."""
        key = plan.fits_key if fmt == "fits" else plan.summary_key
        body = await self._store.get_fresh(key)
        return Ready(body, True) if body is not None else None

    def window_plan(
        self, plan: CutoutPlan, start_btjd: float, end_btjd: float, observed: list[SectorHit]
    ) -> CutoutPlan:
        """Return ``plan`` moved to the observed sector whose (estimated) time span is nearest the window."""
        if plan.sector_pinned:
            return plan
        middle = (start_btjd + end_btjd) / 2
        sector = min({h.sector for h in observed}, key=lambda s: abs(estimated_sector_middle_btjd(s) - middle))
        return CutoutPlan(plan.target, plan.size_px, sector, tuple(h for h in observed if h.sector == sector), False)

    async def is_cached(self, plan: CutoutPlan) -> bool:
        """Return whether the FITS of ``plan`` is in the cache now."""
        ready = await self.cached(plan, "fits")
        if ready is None:
            return False
        ready.body.close()
        return True

    async def ensure(self, plan: CutoutPlan, result_url: str) -> CachedBody:
        """Return the cached FITS of ``plan``, waiting for (or starting) the job that makes it."""
        ready = await self.cached(plan, "fits")
        if ready is not None:
            return ready.body
        job = self.start(plan, result_url)
        assert job.task is not None
        # Shielded: if our caller is cancelled, the cutout job (maybe shared with others) must go on.
        await asyncio.shield(job.task)
        return (await self.after_job(plan, job, "fits")).body

    def start(self, plan: CutoutPlan, result_url: str) -> Job:
        """Return the job that puts ``plan``'s cutout in the cache (an existing one when it is running)."""
        return self._jobs.start(plan.fits_key, result_url, lambda job: self._fetch(plan, job))

    async def after_job(self, plan: CutoutPlan, job: Job, fmt: CutoutFormat) -> Ready:
        """Return the answer a finished job produced (raising its error when it failed)."""
        if job.error is not None:
            raise job.error
        ready = await self.cached(plan, fmt)
        if ready is None:
            raise InsufficientStorage(
                "The cutout was made but the cache could not keep it (it is too small for cutouts this large); "
                "ask for a smaller size=, or the operator can raise TESS_SERVICE_CACHE_SIZE_LIMIT_MB."
            )
        return Ready(ready.body, False)

    def _new_scratch(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="cutout-", dir=self._scratch))

    async def _fetch(self, plan: CutoutPlan, job: Job) -> None:
        """Download, choose the file with the target, stamp the TIC, and cache the FITS and its summary."""
        if await self.is_cached(plan):
            return  # stored by a job that ended between this request's cache check and now
        # The scratch directory sits beside the cache, on the same disk; it is removed whatever happens, so a
        # failed or interrupted download never leaves a file that could be served.
        directory = await run_blocking(self._new_scratch, limiter=self._limiters.io)
        job.progress = lambda: _zip_bytes(directory)
        try:
            target = plan.target
            paths = await self._tesscut.download(
                target.ra_deg,
                target.dec_deg,
                plan.size_px,
                plan.sector,
                directory,
                on_start=lambda: job.mark("running"),
            )
            job.received()
            await run_blocking(self._finish, plan, paths, limiter=self._limiters.io)
        finally:
            job.received()  # the final count, while the zip is still there
            await run_blocking(shutil.rmtree, directory, True, limiter=self._limiters.io)

    def _finish(self, plan: CutoutPlan, paths: list[Path]) -> None:
        target = plan.target
        try:
            chosen = next((p for p in paths if contains_target(p, target.ra_deg, target.dec_deg)), paths[0])
            if target.tic_id is not None:
                stamp_tic(chosen, target.tic_id, target.tessmag)
            summary = describe_tpf(chosen, target.ra_deg, target.dec_deg)
        except (OSError, KeyError, TypeError, ValueError, IndexError) as exc:
            # Not a target pixel file we can read: a broken upstream answer, never cached.
            raise BadUpstreamResponse(
                f"TESScut sent a file that is not a readable target pixel file ({type(exc).__name__}).",
                upstream="TESScut",
            ) from exc
        note = None
        if len(paths) > 1:
            others = ", ".join(_safe_name(p) for p in paths if p != chosen)
            note = f"TESScut returned {len(paths)} files for sector {plan.sector}; served {_safe_name(chosen)}, "
            note += f"which contains the target (also returned: {others})."
        candidate = next(
            (c for c in plan.candidates if chosen.name.startswith(c.name)),
            plan.candidates[0],
        )
        summary.update(
            {
                "sector": summary["sector"] or plan.sector,
                "camera": summary["camera"] or candidate.camera,
                "ccd": summary["ccd"] or candidate.ccd,
                "tic_id": target.tic_id,
                "ra_deg": target.ra_deg,
                "dec_deg": target.dec_deg,
                "position_source": target.source,
                "file_name": self.file_name(plan, candidate),
                "size_bytes": chosen.stat().st_size,
                "note": note,
            }
        )
        headers = {"Content-Disposition": f'attachment; filename="{summary["file_name"]}"'}
        if note:
            headers["X-Cutout-Note"] = note
        self._cache.put_file(
            plan.fits_key, chosen, media_type="application/fits", ttl_s=self._ttl_cutout_s, headers=headers
        )
        self._cache.put(
            plan.summary_key, orjson.dumps(summary), media_type="application/json", ttl_s=self._ttl_cutout_s
        )

    @staticmethod
    def file_name(plan: CutoutPlan, hit: SectorHit) -> str:
        """Return the download name: the TIC when known, else the position, then sector, CCD and size."""
        who = (
            f"tic{plan.target.tic_id}" if plan.target.tic_id else f"{plan.target.ra_deg:.6f}_{plan.target.dec_deg:.6f}"
        )
        return f"{who}_{hit.name}_{plan.size_px}x{plan.size_px}_astrocut.fits"


def _safe_name(path: Path) -> str:
    """Return an upstream file name fit for a header: printable ASCII only (others become '?')."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in path.name)
