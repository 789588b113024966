"""The lifespan's wiring: the thread limiters, the cache, the HTTP clients, the breakers and every service over them.

`build_services` opens these in order and closes them in reverse; `service.main` keeps the app, its routers, its
middleware and the lifespan that puts what this builds on ``app.state``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import httpx

from service import __version__
from service.api.assets import bokeh_resources
from service.deps import Services
from service.infra.cache import DiskCache
from service.infra.shared_flights import SharedFlights
from service.infra.shared_gate import SharedGate
from service.infra.shared_jobs import SharedJobBoard
from service.infra.shared_tier import SharedTier
from service.infra.threads import THREADS_AT_WORK, Admission, Limiters, run_blocking
from service.infra.tiered_cache import TieredCache
from service.infra.work_queue import WorkQueue
from service.services.answers import SlowAnswers
from service.services.artifacts import ArtifactStore
from service.services.cutout_products import CutoutProducts, RenderLimits
from service.services.cutouts import CutoutService
from service.services.dv import DvService
from service.services.exomast_mirror import ExoMastMirror
from service.services.jobs import JobRegistry
from service.services.queued_work import QueuedCutouts
from service.services.readiness import ReadinessProbe
from service.services.surroundings import SurroundingsService
from service.services.targets import TargetResolver
from service.services.tce_products import TceProducts
from service.services.tesscut_mirror import TesscutMirror
from service.services.workshop import Workshop
from service.settings import Settings
from service.upstream.catalogs import UPSTREAM as TIC_CATALOG
from service.upstream.catalogs import TicCatalogClient
from service.upstream.exomast import UPSTREAM as EXOMAST
from service.upstream.exomast import ExoMastClient
from service.upstream.http import Budget
from service.upstream.resilience import CircuitBreaker, RetryPolicy, UpstreamGuard
from service.upstream.skybot import UPSTREAM as SKYBOT
from service.upstream.skybot import SkybotClient
from service.upstream.tesscut import UPSTREAM as TESSCUT
from service.upstream.tesscut import TesscutClient

log = logging.getLogger(__name__)
# How long shutdown waits for worker threads whose callers were cancelled before it closes the cache.
SHUTDOWN_DRAIN_S = 5.0
MIB = 1024 * 1024


@asynccontextmanager
async def build_services(
    settings: Settings,
    *,
    breaker_clock: Callable[[], float] = time.monotonic,
    cache_clock: Callable[[], float] = time.time,
) -> AsyncIterator[Services]:
    """Open the cache and the HTTP clients, build every service over them, yield them, and close it all.

    ``breaker_clock`` is the circuit breakers' clock, ``cache_clock`` the cache's (tests move them by hand). On
    exit the jobs are cancelled and their worker threads given `SHUTDOWN_DRAIN_S` to finish before the cache
    closes under them.
    """
    limiters = Limiters.create(
        cpu_threads=settings.cpu_threads, io_threads=settings.io_threads, render_threads=settings.render_threads
    )
    cache = _disk_cache(settings, cache_clock)
    gate = (
        SharedGate(
            settings.state_redis_url,
            "tesscut",
            in_flight=settings.tesscut_max_in_flight,
            starts_per_s=settings.tesscut_starts_per_s,
        )
        if settings.state_redis_url
        else None
    )
    try:
        guards = _Guards.create(settings, breaker_clock)
        async with (
            _http_client(settings) as exomast_http,
            _http_client(settings) as mast_http,
            _http_client(settings) as skybot_http,
        ):
            body_bytes, total_s = settings.upstream_max_body_mb * MIB, settings.upstream_total_timeout_s
            upstreams = _Upstreams(
                exomast=ExoMastClient(
                    exomast_http, settings.exomast_url, limiters, guards.exomast, Budget(EXOMAST, body_bytes, total_s)
                ),
                catalog=TicCatalogClient(
                    mast_http, settings.mast_url, guards.catalog, Budget(TIC_CATALOG, body_bytes, total_s)
                ),
                tesscut=_tesscut_client(settings, guards.tesscut, gate),
                skybot=SkybotClient(
                    skybot_http, settings.skybot_url, limiters, guards.skybot, Budget(SKYBOT, body_bytes, total_s)
                ),
                breakers=guards.breakers,
            )
            # With a shared tier, replicas also take turns making an answer (a lock per key, in the state Redis
            # when there is one, else in the cache's: an evicted lock only costs a duplicate).
            coordination = settings.state_redis_url or settings.cache_redis_url
            flights = SharedFlights(coordination) if settings.cache_redis_url and coordination else None
            # Jobs' views are published for the other replicas wherever replicas coordinate.
            board = SharedJobBoard(coordination, keep_s=settings.job_keep_s) if coordination else None
            queue = (
                WorkQueue(
                    settings.state_redis_url, job_timeout_s=settings.tesscut_deadline_s, keep_s=settings.job_keep_s
                )
                if settings.work_queue and settings.state_redis_url
                else None
            )
            services = _services(settings, upstreams, limiters, cache, _Shared(flights, board, queue, gate))
            if queue is not None:
                queue.watch_depth()
            await run_blocking(services.cutouts.clear_scratch, limiter=limiters.io)
            await run_blocking(cache.sweep, limiter=limiters.io)  # leftovers of a killed process
            try:
                yield services
            finally:
                upstreams.tesscut.close()
                await services.jobs.shutdown()
                if flights is not None:
                    await flights.close()
                if board is not None:
                    await board.close()
                if queue is not None:
                    await queue.close()
                if gate is not None:
                    await gate.close()
                # Cancelled jobs' threads (a cache write, a decode) run on: the cache must outlive them.
                if not await THREADS_AT_WORK.drain(timeout_s=SHUTDOWN_DRAIN_S):
                    log.warning("%d worker threads still running at shutdown", THREADS_AT_WORK.running)
    finally:
        cache.close()


@dataclass(frozen=True)
class _Shared:
    """What replicas share, when configured: single-flight locks, the job board, the work queue and the gate."""

    flights: SharedFlights | None
    board: SharedJobBoard | None
    queue: WorkQueue | None
    gate: SharedGate | None


@dataclass(frozen=True)
class _Guards:
    """Each upstream's retry policy and circuit breaker (per app instance, so tests stay independent)."""

    exomast: UpstreamGuard
    catalog: UpstreamGuard
    tesscut: UpstreamGuard
    skybot: UpstreamGuard

    @classmethod
    def create(cls, settings: Settings, clock: Callable[[], float]) -> _Guards:
        json_policy = RetryPolicy(
            settings.upstream_max_attempts, settings.upstream_backoff_s, settings.upstream_deadline_s
        )
        tesscut_policy = RetryPolicy(
            settings.tesscut_max_attempts, settings.tesscut_backoff_s, settings.tesscut_deadline_s
        )

        def guard(upstream: str, policy: RetryPolicy) -> UpstreamGuard:
            breaker = CircuitBreaker(
                upstream,
                failure_threshold=settings.breaker_failure_threshold,
                reset_s=settings.breaker_reset_s,
                clock=clock,
            )
            return UpstreamGuard(breaker, policy)

        return cls(
            guard(EXOMAST, json_policy),
            guard(TIC_CATALOG, json_policy),
            guard(TESSCUT, tesscut_policy),
            # SkyBoT is not MAST, but its answers are small like MAST's JSON ones: the same retries suit it.
            guard(SKYBOT, json_policy),
        )

    @property
    def breakers(self) -> tuple[CircuitBreaker, ...]:
        return (self.exomast.breaker, self.catalog.breaker, self.tesscut.breaker, self.skybot.breaker)


@dataclass(frozen=True)
class _Upstreams:
    """The clients of MAST's three upstreams and of SkyBoT, and their breakers (for readiness and metrics)."""

    exomast: ExoMastClient
    catalog: TicCatalogClient
    tesscut: TesscutClient
    skybot: SkybotClient
    breakers: tuple[CircuitBreaker, ...]


def _disk_cache(settings: Settings, clock: Callable[[], float]) -> DiskCache:
    """Open this process's disk cache; with `cache_redis_url` set, in front of the tier the replicas share."""
    make: Callable[..., DiskCache] = DiskCache
    if settings.cache_redis_url is not None:
        shared = SharedTier(
            settings.cache_redis_url, settings.blob_store_url, body_max_bytes=settings.shared_body_max_kb * 1024
        )
        make = partial(TieredCache, shared=shared)
    return make(
        settings.cache_dir,
        size_limit_bytes=settings.cache_size_limit_mb * MIB,
        keep_stale_s=settings.stale_if_error_s,
        write_pause_s=settings.cache_write_pause_s,
        memory_max_bytes=settings.hot_cache_mb * MIB if settings.hot_entry_max_kb else 0,
        memory_entry_max_bytes=settings.hot_entry_max_kb * 1024,
        clock=clock,
    )


def _http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.upstream_read_timeout_s,
            connect=settings.upstream_connect_timeout_s,
            pool=settings.upstream_pool_timeout_s,
        ),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
        ),
        headers={"User-Agent": f"tess-service/{__version__}"},
        follow_redirects=True,
    )


def _tesscut_client(settings: Settings, guard: UpstreamGuard, gate: SharedGate | None) -> TesscutClient:
    return TesscutClient(
        settings.mast_url,
        guard,
        max_in_flight=settings.tesscut_max_in_flight,
        starts_per_s=settings.tesscut_starts_per_s,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.tesscut_read_timeout_s,
        gate=gate,
    )


def _services(
    settings: Settings,
    upstreams: _Upstreams,
    limiters: Limiters,
    cache: DiskCache,
    shared: _Shared,
) -> Services:
    """Build every service over the cache and the upstream clients, each once for the app's life."""
    store = ArtifactStore(cache, limiters, keep_values=cache.memory.max_bytes > 0, shared_flights=shared.flights)
    jobs = JobRegistry(keep_s=settings.job_keep_s, board=shared.board)
    answers = SlowAnswers(jobs, default_wait_s=settings.job_wait_default_s)
    workshop = Workshop(store, cache, jobs, answers, limiters)
    dv = DvService(workshop, upstreams.exomast, ttl_tce_list_s=settings.ttl_tce_list_s, ttl_dv_s=settings.ttl_dv_s)
    # Cutout work runs in TESScut's in-flight slots; a retry comes back when a slot may be free.
    cutout_pool = Admission(
        "cutout", running=settings.tesscut_max_in_flight, waiting=settings.cutout_queue_max, retry_after_s=10
    )
    queued = QueuedCutouts(shared.queue) if shared.queue is not None else None
    cutouts = CutoutService(
        workshop,
        upstreams.tesscut,
        pool=cutout_pool,
        ttl_sectors_s=settings.ttl_sectors_s,
        ttl_cutout_s=settings.ttl_cutout_s,
        queued=queued,
    )
    render_pool = Admission(
        "render", running=settings.render_threads, waiting=settings.render_queue_max, retry_after_s=2
    )
    cutout_products = CutoutProducts(
        workshop,
        cutouts,
        pool=render_pool,
        ttl_s=settings.ttl_cutout_s,
        limits=RenderLimits(settings.movie_max_frames, settings.movie_max_output_mb * MIB),
        queued=queued,
    )
    # The TESScut mirror holds a request at most just under astroquery's default 600-s timeout: past it the
    # client has gone (the job goes on).
    mirror_wait_s = min(settings.tesscut_deadline_s, settings.tesscut_mirror_wait_s)
    return Services(
        settings=settings,
        limiters=limiters,
        cache=cache,
        readiness=ReadinessProbe(
            cache, upstreams.breakers, coordination=shared.gate.ping if shared.gate is not None else None
        ),
        dv=dv,
        targets=TargetResolver(store, dv, upstreams.catalog, ttl_s=settings.ttl_sectors_s),
        cutouts=cutouts,
        jobs=jobs,
        answers=answers,
        tce_products=TceProducts(workshop, dv, render_pool=render_pool),
        cutout_products=cutout_products,
        exomast_mirror=ExoMastMirror(dv, limiters, bokeh_resources=bokeh_resources()),
        tesscut_mirror=TesscutMirror(cutouts, wait_s=mirror_wait_s),
        surroundings=SurroundingsService(
            store, upstreams.catalog, upstreams.skybot, ttl_catalog_s=settings.ttl_sectors_s
        ),
    )
