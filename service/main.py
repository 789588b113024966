"""The application factory: ``uvicorn service.main:app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service import __version__
from service.api import cutouts, health, jobs, lightcurves, movies, tces
from service.api.exomast_mirror import router as exomast_mirror_router
from service.api.tesscut_mirror import router as tesscut_mirror_router
from service.deps import Services
from service.errors import install_error_handlers
from service.infra.cache import DiskCache
from service.infra.head import HeadAsGetMiddleware
from service.infra.threads import Limiters, run_blocking
from service.schemas import Problem
from service.services.artifacts import ArtifactStore
from service.services.cutouts import CutoutService
from service.services.dv import DvService
from service.services.jobs import JobRegistry
from service.services.renders import RenderService
from service.services.targets import TargetResolver
from service.settings import Settings, get_settings
from service.upstream.catalogs import TicCatalogClient
from service.upstream.exomast import ExoMastClient
from service.upstream.tesscut import TesscutClient

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


def _quiet_astroquery() -> None:
    """Silence astroquery's line per download ("Downloading URL ... [Done]"): we log what matters."""
    from astroquery import log as astroquery_log

    astroquery_log.setLevel("WARNING")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; the lifespan opens the HTTP client and the cache, and closes them."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _quiet_astroquery()
        limiters = Limiters.create(
            cpu_threads=settings.cpu_threads, io_threads=settings.io_threads, render_threads=settings.render_threads
        )
        cache = DiskCache(settings.cache_dir, size_limit_bytes=settings.cache_size_limit_mb * 1024 * 1024)
        store = ArtifactStore(cache, limiters)
        jobs_registry = JobRegistry(keep_s=settings.job_keep_s)
        max_body = settings.upstream_max_body_mb * 1024 * 1024
        try:
            async with _http_client(settings) as exomast_http, _http_client(settings) as mast_http:
                exomast = ExoMastClient(
                    exomast_http,
                    settings.exomast_url,
                    limiters,
                    max_body_bytes=max_body,
                    total_timeout_s=settings.upstream_total_timeout_s,
                )
                dv = DvService(
                    store, exomast, limiters, ttl_tce_list_s=settings.ttl_tce_list_s, ttl_dv_s=settings.ttl_dv_s
                )
                catalog = TicCatalogClient(
                    mast_http,
                    settings.mast_url,
                    max_body_bytes=max_body,
                    total_timeout_s=settings.upstream_total_timeout_s,
                )
                tesscut = TesscutClient(
                    settings.mast_url,
                    max_in_flight=settings.tesscut_max_in_flight,
                    starts_per_s=settings.tesscut_starts_per_s,
                    connect_timeout_s=settings.upstream_connect_timeout_s,
                    read_timeout_s=settings.tesscut_read_timeout_s,
                    deadline_s=settings.tesscut_deadline_s,
                    max_attempts=settings.tesscut_max_attempts,
                    backoff_s=settings.tesscut_backoff_s,
                )
                cutout_service = CutoutService(
                    store,
                    cache,
                    tesscut,
                    jobs_registry,
                    limiters,
                    ttl_sectors_s=settings.ttl_sectors_s,
                    ttl_cutout_s=settings.ttl_cutout_s,
                )
                services = Services(
                    settings=settings,
                    limiters=limiters,
                    dv=dv,
                    targets=TargetResolver(store, dv, catalog, ttl_s=settings.ttl_sectors_s),
                    cutouts=cutout_service,
                    jobs=jobs_registry,
                    renders=RenderService(
                        store,
                        cache,
                        dv,
                        cutout_service,
                        jobs_registry,
                        limiters,
                        ttl_s=settings.ttl_cutout_s,
                        ttl_lightcurve_s=settings.ttl_dv_s,
                        max_frames=settings.movie_max_frames,
                        max_output_bytes=settings.movie_max_output_mb * 1024 * 1024,
                    ),
                )
                await run_blocking(services.cutouts.clear_scratch, limiter=limiters.io)
                app.state.services = services
                try:
                    yield
                finally:
                    tesscut.close()
                    await jobs_registry.shutdown()
        finally:
            cache.close()

    app = FastAPI(
        title="TESS time-series service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(HeadAsGetMiddleware)
    app.include_router(tces.router)
    app.include_router(lightcurves.router)
    app.include_router(cutouts.router)
    app.include_router(movies.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
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
