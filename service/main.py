"""The application factory: ``uvicorn service.main:app``."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service import __version__
from service.api import (
    cutouts,
    diagnosis,
    events,
    ffi_lightcurves,
    health,
    jobs,
    lightcurves,
    metrics,
    movies,
    tces,
)
from service.api.assets import install_assets
from service.api.docs import router as docs_router
from service.api.errors import install_error_handlers
from service.api.exomast_mirror import router as exomast_mirror_router
from service.api.explorer import router as explorer_router
from service.api.tesscut_mirror import router as tesscut_mirror_router
from service.infra.edge_tier import EdgeTier
from service.infra.head import HeadAsGetMiddleware
from service.infra.http_cache import StaleMarkingMiddleware
from service.infra.observability import RequestObservabilityMiddleware
from service.infra.signals import termination_hook
from service.schemas import Problem
from service.settings import Settings, get_settings
from service.wiring import build_services

DESCRIPTION = """
TESS time series without fighting the archive. This service wraps MAST's **ExoMAST** API (TESS Data Validation:
TCE lists, DV headers, DV light curves), normalises what it returns into clean JSON, CSV or FITS, and serves it
from a disk cache: the second identical request never reaches MAST.

Every answer carries a strong `ETag` (send `If-None-Match` for a 304), `Cache-Control` and `X-Cache: HIT|MISS`.
Every error is an RFC 9457 `application/problem+json` document whose `detail` says what happened and whose
`retryable` / `Retry-After` say whether trying again can help.
"""


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
    """Build the application; the lifespan builds its services (`service.wiring`) and closes them.

    ``breaker_clock`` is the circuit breakers' clock, ``cache_clock`` the cache's (tests move them by hand).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _quiet_astroquery()
        async with build_services(settings, breaker_clock=breaker_clock, cache_clock=cache_clock) as services:
            app.state.services = services
            # Told to stop (SIGTERM): requests waiting for jobs answer 503 before the grace period ends.
            with termination_hook(lambda: services.jobs.begin_shutdown(settings.shutdown_grace_s)):
                yield

    app = FastAPI(
        title="TESS time-series service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from this origin by service.api.docs, not from a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    # Innermost: cacheable answers served from memory before routing, still counted and given a request id.
    # Its clock is the cache's: an answer's max-age was computed on it (tests move it to expire entries).
    app.add_middleware(
        EdgeTier,
        max_bytes=settings.edge_cache_mb * 1024 * 1024,
        entry_max_bytes=settings.edge_entry_max_kb * 1024,
        clock=cache_clock,
    )
    # Added before HeadAsGet, so it runs inside it and sees the router's matched route for HEAD requests too.
    app.add_middleware(RequestObservabilityMiddleware, access_log=settings.access_log)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(StaleMarkingMiddleware)
    app.include_router(tces.router)
    app.include_router(lightcurves.router)
    app.include_router(events.router)
    app.include_router(cutouts.router)
    app.include_router(movies.router)
    app.include_router(ffi_lightcurves.router)
    app.include_router(diagnosis.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(exomast_mirror_router)
    app.include_router(tesscut_mirror_router)
    app.include_router(docs_router)
    app.include_router(explorer_router)
    install_assets(app)
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
