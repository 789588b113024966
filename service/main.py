"""The application factory: ``uvicorn service.main:app``."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service import __version__
from service.api import cutouts, health, jobs, lightcurves, metrics, movies, tces
from service.api.exomast_mirror import router as exomast_mirror_router
from service.api.tesscut_mirror import router as tesscut_mirror_router
from service.deps import Services
from service.errors import install_error_handlers
from service.infra.cache import DiskCache
from service.infra.head import HeadAsGetMiddleware
from service.infra.http_cache import StaleMarkingMiddleware
from service.infra.observability import RequestObservabilityMiddleware
from service.infra.signals import termination_hook
from service.infra.threads import THREADS_AT_WORK, Admission, Limiters, run_blocking
from service.schemas import Problem
from service.services.answers import SlowAnswers
from service.services.artifacts import ArtifactStore
from service.services.cutout_products import CutoutProducts, RenderLimits
from service.services.cutouts import CutoutService
from service.services.dv import DvService
from service.services.jobs import JobRegistry
from service.services.targets import TargetResolver
from service.services.tce_products import TceProducts
from service.settings import Settings, get_settings
from service.upstream.catalogs import UPSTREAM as TIC_CATALOG
from service.upstream.catalogs import TicCatalogClient
from service.upstream.exomast import UPSTREAM as EXOMAST
from service.upstream.exomast import ExoMastClient
from service.upstream.resilience import CircuitBreaker, RetryPolicy, UpstreamGuard
from service.upstream.tesscut import UPSTREAM as TESSCUT
from service.upstream.tesscut import TesscutClient

log = logging.getLogger(__name__)
# How long shutdown waits for worker threads whose callers were cancelled before it closes the cache.
SHUTDOWN_DRAIN_S = 5.0

DESCRIPTION = """
TESS time series without fighting the archive. This service wraps MAST's **ExoMAST** API (TESS Data Validation:
TCE lists, DV headers, DV light curves), normalises what it returns into clean JSON, CSV or FITS, and serves it
from a disk cache: the second identical request never reaches MAST.

Every answer carries a strong `ETag` (send `If-None-Match` for a 304), `Cache-Control` and `X-Cache: HIT|MISS`.
Every error is an RFC 9457 `application/problem+json` document whose `detail` says what happened and whose
`retryable` / `Retry-After` say whether trying again can help.
"""


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


def _guard(upstream: str, settings: Settings, policy: RetryPolicy, clock: Callable[[], float]) -> UpstreamGuard:
    """Return one upstream's retry policy and circuit breaker (per app instance, so tests stay independent)."""
    breaker = CircuitBreaker(
        upstream, failure_threshold=settings.breaker_failure_threshold, reset_s=settings.breaker_reset_s, clock=clock
    )
    return UpstreamGuard(breaker, policy)


def _quiet_astroquery() -> None:
    """Silence astroquery's line per download ("Downloading URL ... [Done]"): we log what matters."""
    from astroquery import log as astroquery_log

    astroquery_log.setLevel("WARNING")


def create_app(
    settings: Settings | None = None,
    *,
    breaker_clock: Callable[[], float] = time.monotonic,
    cache_clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the application; the lifespan opens the HTTP client and the cache, and closes them.

    ``breaker_clock`` is the circuit breakers' clock, ``cache_clock`` the cache's (tests move them by hand).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _quiet_astroquery()
        limiters = Limiters.create(
            cpu_threads=settings.cpu_threads, io_threads=settings.io_threads, render_threads=settings.render_threads
        )
        cache = DiskCache(
            settings.cache_dir,
            size_limit_bytes=settings.cache_size_limit_mb * 1024 * 1024,
            keep_stale_s=settings.stale_if_error_s,
            write_pause_s=settings.cache_write_pause_s,
            memory_max_bytes=settings.hot_cache_mb * 1024 * 1024 if settings.hot_entry_max_kb else 0,
            memory_entry_max_bytes=settings.hot_entry_max_kb * 1024,
            clock=cache_clock,
        )
        store = ArtifactStore(cache, limiters, keep_values=cache.memory.max_bytes > 0)
        jobs_registry = JobRegistry(keep_s=settings.job_keep_s)
        max_body = settings.upstream_max_body_mb * 1024 * 1024
        json_policy = RetryPolicy(
            settings.upstream_max_attempts, settings.upstream_backoff_s, settings.upstream_deadline_s
        )
        exomast_guard = _guard(EXOMAST, settings, json_policy, breaker_clock)
        catalog_guard = _guard(TIC_CATALOG, settings, json_policy, breaker_clock)
        tesscut_guard = _guard(
            TESSCUT,
            settings,
            RetryPolicy(settings.tesscut_max_attempts, settings.tesscut_backoff_s, settings.tesscut_deadline_s),
            breaker_clock,
        )
        try:
            async with _http_client(settings) as exomast_http, _http_client(settings) as mast_http:
                exomast = ExoMastClient(
                    exomast_http,
                    settings.exomast_url,
                    limiters,
                    exomast_guard,
                    max_body_bytes=max_body,
                    total_timeout_s=settings.upstream_total_timeout_s,
                )
                dv = DvService(
                    store, exomast, limiters, ttl_tce_list_s=settings.ttl_tce_list_s, ttl_dv_s=settings.ttl_dv_s
                )
                catalog = TicCatalogClient(
                    mast_http,
                    settings.mast_url,
                    catalog_guard,
                    max_body_bytes=max_body,
                    total_timeout_s=settings.upstream_total_timeout_s,
                )
                tesscut = TesscutClient(
                    settings.mast_url,
                    tesscut_guard,
                    max_in_flight=settings.tesscut_max_in_flight,
                    starts_per_s=settings.tesscut_starts_per_s,
                    connect_timeout_s=settings.upstream_connect_timeout_s,
                    read_timeout_s=settings.tesscut_read_timeout_s,
                )
                answers = SlowAnswers(jobs_registry, default_wait_s=settings.job_wait_default_s)
                render_pool = Admission(
                    "render", running=settings.render_threads, waiting=settings.render_queue_max, retry_after_s=2
                )
                cutout_service = CutoutService(
                    store,
                    cache,
                    tesscut,
                    jobs_registry,
                    limiters,
                    # Cutout work runs in TESScut's in-flight slots; a retry comes back when a slot may be free.
                    pool=Admission(
                        "cutout",
                        running=settings.tesscut_max_in_flight,
                        waiting=settings.cutout_queue_max,
                        retry_after_s=10,
                    ),
                    ttl_sectors_s=settings.ttl_sectors_s,
                    ttl_cutout_s=settings.ttl_cutout_s,
                    answers=answers,
                )
                services = Services(
                    settings=settings,
                    limiters=limiters,
                    cache=cache,
                    breakers=(exomast_guard.breaker, catalog_guard.breaker, tesscut_guard.breaker),
                    dv=dv,
                    targets=TargetResolver(store, dv, catalog, ttl_s=settings.ttl_sectors_s),
                    cutouts=cutout_service,
                    jobs=jobs_registry,
                    answers=answers,
                    tce_products=TceProducts(store, dv, limiters, render_pool=render_pool, ttl_s=settings.ttl_dv_s),
                    cutout_products=CutoutProducts(
                        store,
                        cache,
                        cutout_service,
                        jobs_registry,
                        answers,
                        limiters,
                        pool=render_pool,
                        ttl_s=settings.ttl_cutout_s,
                        limits=RenderLimits(
                            max_frames=settings.movie_max_frames,
                            max_output_bytes=settings.movie_max_output_mb * 1024 * 1024,
                        ),
                    ),
                )
                await run_blocking(services.cutouts.clear_scratch, limiter=limiters.io)
                await run_blocking(cache.sweep, limiter=limiters.io)  # leftovers of a killed process
                app.state.services = services
                try:
                    # Told to stop (SIGTERM): requests waiting for jobs answer 503 before the grace period ends.
                    with termination_hook(lambda: jobs_registry.begin_shutdown(settings.shutdown_grace_s)):
                        yield
                finally:
                    tesscut.close()
                    await jobs_registry.shutdown()
                    # Cancelled jobs' threads (a cache write, a decode) run on: the cache must outlive them.
                    if not await THREADS_AT_WORK.drain(timeout_s=SHUTDOWN_DRAIN_S):
                        log.warning("%d worker threads still running at shutdown", THREADS_AT_WORK.running)
        finally:
            cache.close()

    app = FastAPI(
        title="TESS time-series service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Added before HeadAsGet, so it runs inside it and sees the router's matched route for HEAD requests too.
    app.add_middleware(RequestObservabilityMiddleware, access_log=settings.access_log)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(StaleMarkingMiddleware)
    app.include_router(tces.router)
    app.include_router(lightcurves.router)
    app.include_router(cutouts.router)
    app.include_router(movies.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(exomast_mirror_router)
    app.include_router(tesscut_mirror_router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Build the OpenAPI document once, with the shared Problem schema every error response refers to."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        app.openapi_schema = schema
    return app.openapi_schema


app = create_app()
# What was built so far (modules, routes) lives as long as the process. Frozen, it is skipped by the collector's
# full passes, which would otherwise walk ~175k objects each (~90 ms with the event loop stopped, several times a
# second under load: most of the warm p99 in benchmarks/bench_load.py).
gc.collect()
gc.freeze()
