"""Prometheus metrics."""

from fastapi import APIRouter
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response

from service.deps import ServicesDep
from service.infra.metrics import CACHE_VOLUME
from service.infra.threads import run_blocking

router = APIRouter(tags=["operations"])
METRICS_PATH = "/metrics"

_EXAMPLE = """\
# HELP tess_http_requests_total HTTP requests answered, by route template, method and status code.
# TYPE tess_http_requests_total counter
tess_http_requests_total{method="GET",route="/tic/{tic_id}/tces",status="200"} 1042.0
tess_http_requests_total{method="GET",route="<unmatched>",status="404"} 3.0
# HELP tess_cache_volume_bytes Estimated size of the disk cache on disk.
# TYPE tess_cache_volume_bytes gauge
tess_cache_volume_bytes 7.3400320e+07
"""


@router.get(
    METRICS_PATH,
    response_class=Response,
    summary="Prometheus metrics",
    description="Every counter, gauge and histogram of this process in the Prometheus text format: requests and "
    "latency by route template, method and status (`tess_http_*`), cache lookups, evictions and volume "
    "(`tess_cache_*`), MAST calls, errors, latency and retries by endpoint (`tess_upstream_*`), worker-pool queues "
    "(`tess_pool_*`) and jobs by state (`tess_jobs`). Routes are labelled by template, requests that matched no "
    "route by `<unmatched>`.",
    responses={
        200: {
            "description": "The metrics (`text/plain; version=1.0.0`).",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": _EXAMPLE}},
        }
    },
)
async def metrics(services: ServicesDep) -> Response:
    """Return every metric, the cache volume measured now."""
    # diskcache sums page counts in SQLite: cheap, but still disk I/O, so in a worker thread.
    CACHE_VOLUME.set(await run_blocking(services.cache.volume_bytes, limiter=services.limiters.io))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
