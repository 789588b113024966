"""FFI cutouts: sector lookups, cutout jobs that download through TESScut, and their cached answers.

Stale-if-error: a cutout past its freshness is downloaded again by a job. When that job fails upstream (TESScut's
502/503/504, an open breaker: an `UpstreamError`) and the expired copy is within the stale-if-error window, the
requests waiting for the job are answered with the expired copy (FITS, summary, or every file for the TESScut
mirror), marked stale through `ArtifactStore.stale` and left as it is in the cache, so the next request asks
TESScut again. The job itself still ends failed, with its problem at /jobs/{id}: nothing new was made. Any other
failure (a `NotFound`, a full pool, a restart) is answered as it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from service.errors import BadUpstreamResponse, InsufficientStorage, NotFound, ServiceError, UpstreamError
from service.infra.cache import CachedBody, DiskCache
from service.infra.threads import Admission, Limiters, run_blocking
from service.services.artifacts import Artifact, ArtifactStore, Ready
from service.services.jobs import Job, JobRegistry
from service.services.targets import Target
from service.tpf import contains_target, describe_tpf, stamp_tic
from service.upstream.tesscut import SectorHit, TesscutClient

CutoutFormat = Literal["fits", "json"]
CUTOUT_VERSION = "v1"


@dataclass(frozen=True)
class CutoutPlan:
    """Which sector to cut, from which candidate CCDs; its cache keys follow from it.

    A cutout is square (``size_px`` on a side) unless ``rows_px`` says otherwise: then it is ``rows_px`` rows by
    ``size_px`` columns (TESScut's y by x; only the TESScut mirror asks for rectangles).
    """

    target: Target
    size_px: int
    sector: int
    candidates: tuple[SectorHit, ...]
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
        # Squares keep the key they always had; a rectangle is "rows x columns", which no square key can be.
        size = str(self.size_px) if self.is_square else "{}x{}".format(*self.shape_px)
        return f"cutout:{CUTOUT_VERSION}:{self.target.cache_key}:{size}:s{self.sector}:{ccds}"

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


@dataclass(frozen=True)
class CutoutFile:
    """One target pixel file as TESScut returned it: its name in TESScut's zip, and the cached bytes."""

    name: str
    body: CachedBody


PIXEL_SCALE_DEG = 21 / 3600  # TESS pixels are 21 arcseconds

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
        pool: Admission,
        ttl_sectors_s: int,
        ttl_cutout_s: int,
    ) -> None:
        self.pool = pool
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

    async def sectors(self, ra_deg: float, dec_deg: float, radius_deg: float = 0.0) -> list[SectorHit]:
        """Return the sectors/cameras/CCDs whose FFIs cover a position, or any point within ``radius_deg`` (cached)."""
        radius_key = f":r{radius_deg:.6f}" if radius_deg else ""
        return await self._store.value(
            f"tesscut:sectors:{ra_deg:.6f},{dec_deg:.6f}{radius_key}",
            lambda: self._tesscut.sectors(ra_deg, dec_deg, radius_deg),
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

    async def plan(self, target: Target, size_px: int, sector: int | None, *, rows_px: int | None = None) -> CutoutPlan:
        """Choose the sector (the requested one, else the latest) and its candidate CCDs; 404 when none."""
        return (await self.plan_with_sectors(target, size_px, sector, rows_px=rows_px))[0]

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
    ) -> tuple[CutoutPlan, list[SectorHit]]:
        """Like `plan`, also returning every sector/camera/CCD the cutout reaches.

        TESScut cuts every CCD that the cutout's area reaches, not only the one under its centre, so sectors are
        looked up within half the cutout's diagonal; the clean routes and the TESScut mirror then plan alike.
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
        return dataclasses.replace(
            plan, sector=sector, candidates=tuple(h for h in observed if h.sector == sector), sector_pinned=False
        )

    async def is_cached(self, plan: CutoutPlan) -> bool:
        """Return whether the FITS of ``plan`` is in the cache now."""
        ready = await self.cached(plan, "fits")
        if ready is None:
            return False
        ready.body.close()
        return True

    async def files(self, plan: CutoutPlan) -> list[CutoutFile] | None:
        """Return every file TESScut returned for ``plan``, opened from the cache; None unless all are there.

        Cutouts cached before the manifest existed have none, and count as missing here (not for `cached`).
        """
        return await self._open_files(plan, self._store.get_fresh)

    async def _open_files(
        self, plan: CutoutPlan, opener: Callable[[str], Awaitable[CachedBody | None]]
    ) -> list[CutoutFile] | None:
        """Return the files the manifest of ``plan`` lists, each opened by ``opener``; None unless all are there."""
        manifest = await opener(plan.files_key)
        if manifest is None:
            return None
        opened: list[CutoutFile] = []
        try:
            for entry in orjson.loads(manifest.read()):
                body = await opener(entry["key"])
                if body is None:  # evicted on its own: the set is incomplete
                    for found in opened:
                        found.body.close()
                    return None
                opened.append(CutoutFile(entry["name"], body))
        except BaseException:
            for found in opened:  # cancelled half-way: nothing stays open
                found.body.close()
            raise
        return opened

    async def ensure_files(self, plan: CutoutPlan, result_url: str) -> tuple[list[CutoutFile], bool]:
        """Return every file TESScut returned for ``plan`` and whether all came from the cache (else a job ran).

        When the job failed upstream, the expired files are returned instead, marked stale, if all are there.
        """
        found = await self.files(plan)
        if found is not None:
            return found, True
        job = self.start(plan, result_url)
        assert job.task is not None
        # The wait never cancels the cutout job (maybe shared with others), and ends early when the service stops.
        await self._jobs.wait(job.task)
        if not job.task.done():
            self._jobs.raise_if_stopping()
        if job.error is not None:
            return await self._stale_files(plan, job.error), False
        found = await self.files(plan)
        if found is None:
            raise InsufficientStorage(
                "The cutout was made but the cache could not keep all its files (it is too small for cutouts this "
                "large); ask for a smaller one, or the operator can raise TESS_SERVICE_CACHE_SIZE_LIMIT_MB."
            )
        return found, False

    async def _has_all_files(self, plan: CutoutPlan) -> bool:
        found = await self.files(plan)
        for file in found or []:
            file.body.close()
        return found is not None

    async def ensure(self, plan: CutoutPlan, result_url: str, *, stale_ok: bool = False) -> CachedBody:
        """Return the cached FITS of ``plan``, waiting for (or starting) the job that makes it.

        When the job fails upstream, its error is raised, unless ``stale_ok``: then the expired FITS is returned
        when there is one (see the module docstring). Renders pass False: a movie made from a stale cutout would be
        served uncached, but a movie job's result is read back from the cache (`RenderService.after_job`), so
        until a render job can hand such a body to its waiters, movies answer TESScut's error and cache nothing.
        """
        ready = await self.cached(plan, "fits")
        if ready is not None:
            return ready.body
        job = self.start(plan, result_url)
        assert job.task is not None
        # Shielded: if our caller is cancelled, the cutout job (maybe shared with others) must go on.
        await asyncio.shield(job.task)
        if job.error is not None and not stale_ok:
            raise job.error
        return (await self.after_job(plan, job, "fits")).body

    def start(self, plan: CutoutPlan, result_url: str) -> Job:
        """Return the job that puts ``plan``'s cutout in the cache (an existing one when it is running).

        A new job needs a place in the cutout pool: raises `Overloaded` (503) when it is full.
        """
        return self._jobs.start(plan.fits_key, result_url, lambda job: self._fetch(plan, job), pool=self.pool)

    async def after_job(self, plan: CutoutPlan, job: Job, fmt: CutoutFormat) -> Ready:
        """Return the answer a finished job produced; when it failed, its expired answer (stale) or its error."""
        if job.error is not None:
            return Ready(await self._stale(plan.fits_key if fmt == "fits" else plan.summary_key, job.error), False)
        ready = await self.cached(plan, fmt)
        if ready is None:
            raise InsufficientStorage(
                "The cutout was made but the cache could not keep it (it is too small for cutouts this large); "
                "ask for a smaller size=, or the operator can raise TESS_SERVICE_CACHE_SIZE_LIMIT_MB."
            )
        return Ready(ready.body, False)

    async def _stale(self, key: str, error: ServiceError) -> CachedBody:
        """Return the expired entry ``key``, marked stale, when ``error`` came from upstream and the window allows.

        Otherwise raise ``error``: a `NotFound` is news, never hidden behind an old copy; our own failures too.
        """
        if isinstance(error, UpstreamError):
            body = await self._store.stale(key, error)
            if body is not None:
                return body
        raise error

    async def _stale_files(self, plan: CutoutPlan, error: ServiceError) -> list[CutoutFile]:
        """Return every expired file of ``plan``, marked stale, as `_stale` does for one; else raise ``error``."""
        if isinstance(error, UpstreamError):
            upstream_error = error  # narrowed, for the lambda
            found = await self._open_files(plan, lambda key: self._store.stale(key, upstream_error))
            if found is not None:
                return found
        raise error

    def _new_scratch(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="cutout-", dir=self._scratch))

    async def _fetch(self, plan: CutoutPlan, job: Job) -> None:
        """Download, choose the file with the target, stamp the TIC, and cache the FITS and its summary."""
        if await self._has_all_files(plan):
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
                plan.size_px if plan.is_square else plan.shape_px,
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
        """Cache the file with the target under `fits_key`, its summary, the other files and the manifest.

        The other files (a cutout that reaches a second CCD) are kept for position targets only, the ones the
        TESScut mirror serves whole; TIC cutouts are stamped and only ever served alone. The manifest goes last,
        so a manifest in the cache means every file it lists was stored.
        """
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
        kept = [p for p in paths if p == chosen or target.tic_id is None]
        manifest = [
            {"name": _safe_name(p), "key": plan.fits_key if p == chosen else plan.other_file_key(_safe_name(p))}
            for p in kept
        ]
        for path, entry in zip(kept, manifest, strict=True):
            if path != chosen:
                self._cache.put_file(entry["key"], path, media_type="application/fits", ttl_s=self._ttl_cutout_s)
        self._cache.put_file(
            plan.fits_key, chosen, media_type="application/fits", ttl_s=self._ttl_cutout_s, headers=headers
        )
        self._cache.put(
            plan.summary_key, orjson.dumps(summary), media_type="application/json", ttl_s=self._ttl_cutout_s
        )
        self._cache.put(plan.files_key, orjson.dumps(manifest), media_type="application/json", ttl_s=self._ttl_cutout_s)

    @staticmethod
    def file_name(plan: CutoutPlan, hit: SectorHit) -> str:
        """Return the download name: the TIC when known, else the position, then sector, CCD and size."""
        who = (
            f"tic{plan.target.tic_id}" if plan.target.tic_id else f"{plan.target.ra_deg:.6f}_{plan.target.dec_deg:.6f}"
        )
        rows, columns = plan.shape_px
        return f"{who}_{hit.name}_{columns}x{rows}_astrocut.fits"


def _safe_name(path: Path) -> str:
    """Return an upstream file name fit for a header: printable ASCII only (others become '?')."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in path.name)
