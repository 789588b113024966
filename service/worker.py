"""``python -m service.worker``: run queued cutouts and renders (TESS_SERVICE_WORK_QUEUE) until SIGTERM or SIGINT.

A worker is the service's wiring without HTTP: its own local cache tiers in front of the shared ones, TESScut
behind the shared gate, and a SAQ worker taking `TESS_SERVICE_WORKER_CONCURRENCY` jobs at a time from the queue in
the state Redis. Only workers call TESScut for cutouts, so their concurrency summed over all workers (two of 5 by
default) is the number of TESScut downloads in flight at most; the shared gate also spaces their starts.

Its metrics (queue depth, jobs run by outcome, everything the wiring counts) are served in the Prometheus text
format on ``TESS_SERVICE_WORKER_METRICS_PORT`` at the service's host; logs go to stderr like the service's.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import start_http_server
from redis.exceptions import RedisError
from saq import Worker
from saq.types import Context, PartialTimersDict

from service.infra.logs import configure_logging
from service.infra.metrics import QUEUE_JOB_RUNS, QUEUE_JOBS_RUNNING
from service.infra.work_queue import SWEEP_EVERY_S, open_queue, publish_depth
from service.services.cutout_plans import plan_from_json
from service.services.cutout_products import CutoutAsk
from service.services.product_catalog import CUTOUT_PRODUCTS
from service.services.queued_work import (
    CUTOUT_FUNCTION,
    RENDER_FUNCTION,
    Touch,
    params_from_text,
    run_cutout,
    run_here,
)
from service.settings import Settings, get_settings
from service.wiring import build_services

log = logging.getLogger("service.worker")


async def work(settings: Settings) -> None:
    """Run queued jobs with ``settings`` until told to stop; then let running jobs finish for the grace period."""
    if not (settings.work_queue and settings.state_redis_url):
        raise SystemExit("service.worker needs TESS_SERVICE_WORK_QUEUE=true and TESS_SERVICE_STATE_REDIS_URL")
    # The worker's own services download in this process: they must not put the work back on the queue.
    local = settings.model_copy(update={"work_queue": False})
    async with build_services(local) as services:
        queue = open_queue(settings.state_redis_url)

        async def cutout(ctx: Context, *, plan: dict[str, Any]) -> dict[str, Any]:
            return await counted(CUTOUT_FUNCTION, lambda touch: run_cutout(services.cutouts, plan, touch), ctx)

        async def render(
            ctx: Context, *, product: str, plan: dict[str, Any], params: str, cutout_url: str
        ) -> dict[str, Any]:
            ask = CutoutAsk(CUTOUT_PRODUCTS[product], plan_from_json(plan), params_from_text(params))
            making = asyncio.ensure_future(services.cutout_products.make_here(ask, cutout_url))
            return await counted(RENDER_FUNCTION, lambda touch: run_here(making, lambda: 0, touch), ctx)

        worker: Worker[Context] = Worker(
            queue,
            [(CUTOUT_FUNCTION, cutout), (RENDER_FUNCTION, render)],
            concurrency=settings.worker_concurrency,
            # All four given: SAQ types them as required. Only the sweep differs from its defaults (60 s).
            timers=PartialTimersDict(schedule=1, worker_info=10, abort=1, sweep=SWEEP_EVERY_S),
            dequeue_timeout=1.0,
            shutdown_grace_period_s=int(settings.shutdown_grace_s),
        )
        depth = asyncio.ensure_future(publish_depth(queue))
        try:
            log.info("worker %s taking %d cutout jobs at a time", worker.id, settings.worker_concurrency)
            await worker.start()
        finally:
            depth.cancel()
            await asyncio.gather(depth, return_exceptions=True)
            await queue.disconnect()


async def counted(function: str, run: Callable[[Touch], Awaitable[dict[str, Any]]], ctx: Context) -> dict[str, Any]:
    """Run one queued job's work, touching its record every second, and count it by outcome."""
    job = ctx["job"]

    async def touch(received: int) -> None:
        try:
            await job.update(meta={"bytes_received": received})
        except (RedisError, OSError) as error:  # the job goes on; its heartbeat resumes with Redis
            log.warning("could not update queued job %s: %s", job.key, error)

    QUEUE_JOBS_RUNNING.inc()
    outcome = "crashed"
    try:
        result = await run(touch)
        outcome = "failed" if "error" in result else "done"
        return result
    finally:
        QUEUE_JOBS_RUNNING.dec()
        QUEUE_JOB_RUNS.labels(function, outcome).inc()


def main() -> None:
    """Configure logging and metrics from the environment and run the worker."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    asyncio.run(work(settings))
    sys.exit(0)


if __name__ == "__main__":
    main()
