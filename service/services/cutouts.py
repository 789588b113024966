"""FFI cutouts: answered from the cache, or through a job that downloads from TESScut.

Planning lives in `cutout_plans` (which sector, the plan's keys), storing and reading back in `cutout_store`; this
module runs the jobs that download (into a scratch directory beside the cache) and answers requests.

Stale-if-error: a cutout past its freshness is downloaded again by a job. When that job fails upstream and the
expired copy is within the stale-if-error window, the requests waiting for the job are answered with the expired
copy (FITS, summary, or every file for the TESScut mirror), marked stale (`CutoutStore.stale`). The job itself
still ends failed, with its problem at /jobs/{id}: nothing new was made.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from service.errors import InsufficientStorage
from service.infra.cache import CachedBody
from service.infra.threads import Admission, run_blocking
from service.services.answers import Answer, CachePolicy, Found, Planned, SlowWork
from service.services.cutout_plans import CutoutArgs, CutoutPlan, CutoutPlanner, window_plan
from service.services.cutout_store import CutoutFile, CutoutFormat, CutoutStore
from service.services.jobs import Job
from service.services.queued_work import QueuedCutouts
from service.services.targets import Target
from service.services.workshop import Workshop
from service.upstream.tesscut import TesscutClient

__all__ = ["CutoutArgs", "CutoutFile", "CutoutFormat", "CutoutPlan", "CutoutService"]


def _zip_bytes(directory: Path) -> int:
    """Return the bytes received from TESScut so far: the size of the zip being downloaded."""
    return sum(entry.stat().st_size for entry in directory.glob("*.zip"))


class CutoutService:
    """Answers cutout requests from the cache, or through a job that downloads from TESScut."""

    def __init__(
        self,
        workshop: Workshop,
        tesscut: TesscutClient,
        *,
        pool: Admission,
        ttl_sectors_s: int,
        ttl_cutout_s: int,
        queued: QueuedCutouts | None = None,
    ) -> None:
        self.pool = pool
        self._queued = queued
        self.planner = CutoutPlanner(workshop.store, tesscut, ttl_sectors_s=ttl_sectors_s)
        self.stored = CutoutStore(workshop.store, workshop.cache, workshop.limiters, ttl_cutout_s=ttl_cutout_s)
        self._tesscut = tesscut
        self._jobs = workshop.jobs
        self._answers = workshop.answers
        self._limiters = workshop.limiters
        self._ttl_sectors_s = ttl_sectors_s
        self._scratch = workshop.cache.directory / "incoming"
        # Planning, as the mirror and the cutout-backed products use it.
        self.sectors = self.planner.sectors
        self.sectors_response = self.planner.sectors_response
        self.plan_with_sectors = self.planner.plan_with_sectors
        self.plan_every_sector = self.planner.plan_every_sector
        self.window_plan = window_plan

    def clear_scratch(self) -> None:
        """Remove download leftovers of a previous process (blocking; call once at start-up).

        Downloads land in scratch directories and only reach the cache whole; a process killed mid-download
        leaves its directory behind, and nothing ever serves from there.
        """
        shutil.rmtree(self._scratch, ignore_errors=True)

    async def plan(self, target: Target, size_px: int, sector: int | None, *, rows_px: int | None = None) -> CutoutPlan:
        """Choose the sector (the requested one, else the latest) and its candidate CCDs; 404 when none."""
        return (await self.planner.plan_with_sectors(target, size_px, sector, rows_px=rows_px))[0]

    def policy(self, plan: CutoutPlan, vary: str | None = None) -> CachePolicy:
        """Return how clients may keep an answer made from ``plan``: for good once its sector is named."""
        pinned = plan.sector_pinned
        return CachePolicy(immutable=pinned, vary=vary, max_age_cap_s=None if pinned else self._ttl_sectors_s)

    async def answer(
        self,
        target: Callable[[], Awaitable[Target]],
        args: CutoutArgs,
        *,
        fmt: CutoutFormat,
        then: str,
        vary: str | None,
    ) -> Answer:
        """Plan (``target`` may need MAST) and answer the cutout, all within ``args.wait_s`` (see `SlowAnswers`)."""

        async def plan() -> CutoutPlan:
            return await self.plan(await target(), args.size_px, args.sector)

        async def starter(plan: CutoutPlan) -> Callable[[], Job]:
            return lambda: self.start(plan, then)  # only when a job starts: not on a cache hit

        def work(plan: CutoutPlan) -> SlowWork:
            return SlowWork(
                cached=lambda: self.cached(plan, fmt),
                starter=lambda: starter(plan),
                finished=lambda job: self.after_job(plan, job, fmt),
                policy=self.policy(plan, vary),
            )

        return await self._answers.answer(Planned(plan, work, self.pool), args.wait_s, then)

    async def cached(self, plan: CutoutPlan, fmt: CutoutFormat) -> Found | None:
        """Return the cached answer for ``plan`` in ``fmt``, or None."""
        body = await self.stored.get_fresh(plan, fmt)
        return Found(body, True) if body is not None else None

    async def is_cached(self, plan: CutoutPlan) -> bool:
        """Return whether the FITS of ``plan`` is in the cache now."""
        found = await self.cached(plan, "fits")
        if found is None:
            return False
        found.body.close()
        return True

    async def files(self, plan: CutoutPlan) -> list[CutoutFile] | None:
        """Return every file TESScut returned for ``plan``, opened from the cache; None unless all are there."""
        return await self.stored.files(plan)

    async def ensure_files(self, plan: CutoutPlan, result_url: str) -> tuple[list[CutoutFile], bool]:
        """Return every file TESScut returned for ``plan`` and whether all came from the cache (else a job ran).

        When the job failed upstream, the expired files are returned instead, marked stale, if all are there.
        """
        found = await self.stored.files(plan)
        if found is not None:
            return found, True
        job = self.start(plan, result_url)
        assert job.task is not None
        # The wait never cancels the cutout job (maybe shared with others), and ends early when the service stops.
        await self._jobs.wait(job.task)
        if not job.task.done():
            self._jobs.raise_if_stopping()
        if job.error is not None:
            return await self.stored.stale_files(plan, job.error), False
        found = await self.stored.files(plan)
        if found is None:
            raise InsufficientStorage(
                "The cutout was made but the cache could not keep all its files (it is too small for cutouts this "
                "large); ask for a smaller one, or the operator can raise TESS_SERVICE_CACHE_SIZE_LIMIT_MB."
            )
        return found, False

    async def ensure(self, plan: CutoutPlan, result_url: str, *, stale_ok: bool = False) -> CachedBody:
        """Return the cached FITS of ``plan``, waiting for (or starting) the job that makes it.

        When the job fails upstream, its error is raised, unless ``stale_ok``: then the expired FITS is returned
        when there is one (see the module docstring). Cutout-backed products pass False: a product made from a
        stale cutout would be served uncached, but a product job's result is read back from the cache
        (`CutoutProducts.after_job`), so until such a job can hand that body to its waiters, they answer TESScut's
        error and cache nothing.
        """
        found = await self.cached(plan, "fits")
        if found is not None:
            return found.body
        job = self.start(plan, result_url)
        assert job.task is not None
        # Shielded: if our caller is cancelled, the cutout job (maybe shared with others) must go on.
        await asyncio.shield(job.task)
        if job.error is not None and not stale_ok:
            raise job.error
        return (await self.after_job(plan, job, "fits")).body

    def start(self, plan: CutoutPlan, result_url: str) -> Job:
        """Return the job that puts ``plan``'s cutout in the cache (an existing one when it is running).

        A new job needs a place in the cutout pool: raises `Overloaded` (503) when it is full. With a work queue
        (`QueuedCutouts`) a worker downloads and the job follows it.
        """
        fetch = self._queued.fetch if self._queued is not None else self._fetch
        return self._jobs.start(plan.fits_key, result_url, lambda job: fetch(plan, job), pool=self.pool)

    async def after_job(self, plan: CutoutPlan, job: Job, fmt: CutoutFormat) -> Found:
        """Return the answer a finished job produced; when it failed, its expired answer (stale) or its error."""
        if job.error is not None:
            return Found(await self.stored.stale(plan, fmt, job.error), False)
        found = await self.cached(plan, fmt)
        if found is None:
            raise InsufficientStorage(
                "The cutout was made but the cache could not keep it (it is too small for cutouts this large); "
                "ask for a smaller size=, or the operator can raise TESS_SERVICE_CACHE_SIZE_LIMIT_MB."
            )
        return Found(found.body, False)

    def _new_scratch(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="cutout-", dir=self._scratch))

    async def _fetch(self, plan: CutoutPlan, job: Job) -> None:
        """Download, choose the file with the target, stamp the TIC, and cache the FITS and its summary."""
        if await self.stored.has_all_files(plan):
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
            await run_blocking(self.stored.keep, plan, paths, limiter=self._limiters.io)
        finally:
            job.received()  # the final count, while the zip is still there
            await run_blocking(shutil.rmtree, directory, True, limiter=self._limiters.io)
