"""Products made from a cached cutout (movies, frames, and whatever comes next): declared once, made in the pool.

A `CutoutProduct` is a declaration (`Product`: name, the code that shapes its bytes, media types) and a pure
function that makes its bytes from the cutout's FITS file. `CutoutProducts` does the rest for every such product:
planning (where, which sector), the cache lookup under a key built from the declaration, single-flight, the job
that waits for the cutout (starting or joining the cutout job) and then renders, the wait / 202 decision, and
admission. Adding a product is a pure function, a declaration and a route.

Rendering needs a place in the render pool (`Admission`), taken only around the make step itself: fetching the
cutout holds none, as it is bounded by its own machinery (breakers, TESScut slots, the cutout pool). New render
work is refused at once with `Overloaded` (503) when the pool is full when it is asked for, or when it finds the
pool full once its cutout has arrived; cached products and identical work already under way are joined, never
refused. A product's job needs only its `CutoutAsk` (plain data) and the cache: it could run in another process.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO, Generic, TypeVar

from service.errors import InsufficientStorage, InvalidRequest
from service.infra.threads import Admission, run_blocking
from service.services.answers import Answer, CachePolicy, Found, Planned, SlowWork
from service.services.artifacts import Artifact
from service.services.cutouts import CutoutArgs, CutoutPlan, CutoutService
from service.services.identity import Product
from service.services.jobs import Job
from service.services.pools import overloaded_when_full
from service.services.queued_work import QueuedCutouts
from service.services.targets import Target
from service.services.tce_products import Made
from service.services.workshop import Workshop
from service.tpf import WindowOutsideSector

Q = TypeVar("Q")


@dataclass(frozen=True)
class RenderLimits:
    """What one rendering may cost: frames read, and bytes (of pixels before encoding, of output after)."""

    max_frames: int
    max_output_bytes: int


@dataclass(frozen=True)
class CutoutProduct(Generic[Q]):
    """A product made from one cached cutout.

    ``make(source, plan, params, limits)`` runs in a render thread and returns (bytes, media type), or a `Made`
    when the bytes come with headers of their own; it raises `InvalidRequest` for parameters the data cannot
    satisfy. ``check(plan, params, limits)`` refuses what is known to be too costly before any cutout is fetched.
    ``window(params)`` is the BTJD span the product shows, which chooses the sector when none is named (None: no
    span, the latest sector). ``vary(params)`` is the request header the answer was negotiated by, if any.
    ``max_age_cap(params)`` caps how long clients (and caches in front) may keep the answer, in seconds, when it is
    made from something incomplete (SkyBoT unavailable: 0, so that the next request asks again); None: no cap.
    """

    product: Product
    make: Callable[[BinaryIO, CutoutPlan, Q, RenderLimits], tuple[bytes, str] | Made]
    check: Callable[[CutoutPlan, Q, RenderLimits], None]
    window: Callable[[Q], tuple[float, float] | None] | None = None
    vary: Callable[[Q], str | None] | None = None
    max_age_cap: Callable[[Q], int | None] | None = None


@dataclass(frozen=True)
class CutoutAsk(Generic[Q]):
    """One request for a cutout-backed product: which product, from which cutout, with which parameters."""

    product: CutoutProduct[Q]
    plan: CutoutPlan
    params: Q

    @property
    def key(self) -> str:
        """Return the cache key: the product's identity, the cutout's key and the parameters."""
        return self.product.product.key(self.plan.fits_key, self.params)


def outside_sector(exc: WindowOutsideSector, sector: int) -> InvalidRequest:
    """Return the 422 of a window that holds no frame of the sector: it names the sector's time span."""
    return InvalidRequest(
        f"BTJD {exc.start_btjd}–{exc.end_btjd} holds no frame of sector {sector}, whose frames span BTJD "
        f"{exc.first_btjd:.4f}–{exc.last_btjd:.4f}; pass a window that overlaps them, or sector= for another "
        "sector.",
        extensions={
            "sector": sector,
            "sector_start_btjd": round(exc.first_btjd, 5),
            "sector_end_btjd": round(exc.last_btjd, 5),
        },
    )


def cutout_url(cutout_path: str, plan: CutoutPlan) -> str:
    """Return the URL of the cutout a product is made from (a cutout job's result)."""
    return f"{cutout_path}{'&' if '?' in cutout_path else '?'}sector={plan.sector}&size={plan.size_px}"


class CutoutProducts:
    """Answers, makes and caches every cutout-backed product; making runs in the render pool."""

    def __init__(
        self,
        workshop: Workshop,
        cutouts: CutoutService,
        *,
        pool: Admission,
        ttl_s: int,
        limits: RenderLimits,
        queued: QueuedCutouts | None = None,
    ) -> None:
        self.pool = pool
        self._queued = queued
        self._store = workshop.store
        self._cache = workshop.cache
        self._cutouts = cutouts
        self._jobs = workshop.jobs
        self._answers = workshop.answers
        self._limiters = workshop.limiters
        self._ttl_s = ttl_s
        self._limits = limits

    async def answer(
        self,
        product: CutoutProduct[Q],
        target: Callable[[], Awaitable[Target]],
        params: Q,
        args: CutoutArgs,
        *,
        then: str,
        cutout_path: str,
    ) -> Answer:
        """Plan (``target`` and the sector lookup may need MAST) and answer, all within ``args.wait_s``.

        Slow planning goes on in a job holding a cutout place (what it waits for is TESScut, and the cutout job
        it starts takes that place over); a render place is taken only when making starts.
        """

        async def plan() -> CutoutAsk[Q]:
            plan, observed = await self._cutouts.plan_with_sectors(await target(), args.size_px, args.sector)
            span = product.window(params) if product.window is not None else None
            if span is not None:
                plan = self._cutouts.window_plan(plan, *span, observed)
            product.check(plan, params, self._limits)
            return CutoutAsk(product, plan, params)

        def work(ask: CutoutAsk[Q]) -> SlowWork:
            return SlowWork(
                cached=lambda: self.cached(ask),
                starter=lambda: self.starter(ask, then, cutout_url(cutout_path, ask.plan)),
                finished=lambda job: self.after_job(ask, job),
                policy=self.policy(ask),
            )

        return await self._answers.answer(Planned(plan, work, self._cutouts.pool), args.wait_s, then)

    def policy(self, ask: CutoutAsk[Q]) -> CachePolicy:
        """Return how clients may keep ``ask``'s answer: as its cutout, unless the product caps it."""
        product, params = ask.product, ask.params
        policy = self._cutouts.policy(ask.plan, product.vary(params) if product.vary is not None else None)
        cap = product.max_age_cap(params) if product.max_age_cap is not None else None
        if cap is None:
            return policy
        capped = cap if policy.max_age_cap_s is None else min(cap, policy.max_age_cap_s)
        return CachePolicy(immutable=False, vary=policy.vary, max_age_cap_s=capped)

    async def cached(self, ask: CutoutAsk[Q]) -> Found | None:
        """Return the cached product, or None."""
        body = await self._store.get_fresh(ask.key)
        return Found(body, True) if body is not None else None

    async def starter(self, ask: CutoutAsk[Q], result_url: str, cutout_url: str) -> Callable[[], Job]:
        """Look up what making ``ask`` needs, and return what starts (or joins) its job.

        The lookup awaits the cache; the returned function does not, so admission happens in one step: joining a
        running job never fails; a new one is refused (`Overloaded`) when the render pool is full now, else it
        starts (or joins) the cutout job when the cutout is not cached (which the cutout pool may refuse), then
        the product's job. That job takes its render place only once the cutout is there (`_make`).
        """
        cutout_cached = await self._cutouts.is_cached(ask.plan)

        def start() -> Job:
            running = self._jobs.running(ask.key)
            if running is not None:
                return running
            with overloaded_when_full():
                self.pool.refuse_if_full()
            cutout_job = None if cutout_cached else self._cutouts.start(ask.plan, cutout_url)
            job = self._jobs.start(ask.key, result_url, lambda job: self._run(ask, job, cutout_url))
            if cutout_job is not None:
                # Report the cutout download's progress as this job's (the cutout job is shared, not duplicated).
                job.progress = cutout_job.received
            return job

        return start

    async def after_job(self, ask: CutoutAsk[Q], job: Job) -> Found:
        """Return what a finished job made, raising its error when it failed."""
        if job.error is not None:
            raise job.error
        found = await self.cached(ask)
        if found is None:
            raise InsufficientStorage(
                f"The {ask.product.product.name} was made but the cache could not keep it; shorten the window or "
                "lower scale=, or the operator can raise TESS_SERVICE_CACHE_SIZE_LIMIT_MB."
            )
        return Found(found.body, False)

    async def _run(self, ask: CutoutAsk[Q], job: Job, cutout_url: str) -> None:
        job.mark("running")
        if self._queued is not None:
            # With a work queue: the cutout first (a queued download, shared with every request for it), then the
            # render on a worker, which finds the cutout in the shared tier and leaves the product there.
            (await self._cutouts.ensure(ask.plan, cutout_url)).close()
            name = ask.product.product.name
            await self._queued.render(ask.key, name, ask.plan, ask.params, cutout_url, job)
            return
        await self.make_here(ask, cutout_url)

    async def make_here(self, ask: CutoutAsk[Q], cutout_url: str) -> None:
        """Make ``ask``'s product in this process (unless cached) and cache it."""
        body, _ = await self._store.body(ask.key, lambda: self._make(ask, cutout_url))
        body.close()

    async def _make(self, ask: CutoutAsk[Q], cutout_url: str) -> Artifact:
        # Wait for the cutout, but open its file only inside the render thread: a queue of renders waiting for
        # a thread must not hold a file descriptor each.
        (await self._cutouts.ensure(ask.plan, cutout_url)).close()

        def make() -> Artifact:
            fits_body = self._cache.get(ask.plan.fits_key)
            if fits_body is None:
                raise InsufficientStorage("The cutout left the cache before it could be rendered; ask again.")
            source = fits_body.file if fits_body.file is not None else io.BytesIO(fits_body.read())
            try:
                made = ask.product.make(source, ask.plan, ask.params, self._limits)
            finally:
                fits_body.close()
            made = made if isinstance(made, Made) else Made(*made)
            return Artifact(made.payload, made.media_type, self._ttl_s, made.headers)

        # The render place is taken here, not while the cutout downloads; a full pool now fails the job (503).
        with overloaded_when_full(), self.pool.admitted_work():
            return await run_blocking(make, limiter=self._limiters.render)
