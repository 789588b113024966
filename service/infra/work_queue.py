"""The job queue in the state Redis (SAQ): replicas enqueue cutouts and renders and follow them; workers run them.

Why SAQ: asyncio-native like the service; a job's key refuses a duplicate while the job is incomplete, so many
replicas asking for the same cutout at once make one job; workers touch a running job's record (here every
second, with its progress) and a sweep re-runs the job of a worker that stopped touching it (killed outright);
its state lives in Redis, so with AOF a restart of the state Redis loses no job.

A replica follows a job by reading its record every `POLL_S` (not over pub/sub: a missed message cannot strand a
waiter, and reading again after a Redis restart is the same code). What the job returns is a small JSON result;
what it makes (a cutout, a movie) travels through the shared cache tier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from saq.job import Status
from saq.queue.redis import RedisQueue

from service.infra.metrics import QUEUE_JOBS

log = logging.getLogger(__name__)

CUTOUT_QUEUE = "tess-cutouts"
POLL_S = 0.3
# A worker publishes its job's progress this often; it is also the job's heartbeat.
TOUCH_EVERY_S = 1.0
# A running job whose record was not touched for this long belongs to a dead worker: the sweep re-runs it.
HEARTBEAT_S = 8
# How often workers sweep for such jobs (one sweep per period across all workers, by a lock in Redis).
SWEEP_EVERY_S = 2
# Attempts of one job: the first and up to two re-runs after a killed worker or a bug.
ATTEMPTS = 3
_TIMEOUT_S = 5.0


class QueueUnavailable(OSError):
    """The state Redis holding the queue could not be reached for longer than a follower waits."""


class QueuedJobFailed(Exception):
    """The job ended without a result: its attempts ran out (workers killed, or a bug in every attempt)."""


@dataclass
class Progress:
    """What a follower learns of its job while it runs."""

    on_start: Callable[[], None]
    on_bytes: Callable[[int], None]


def open_queue(redis_url: str, name: str = CUTOUT_QUEUE) -> RedisQueue:
    """Return the queue ``name`` in the Redis at ``redis_url`` (bounded socket timeouts, orjson records)."""
    # No socket timeout on reads: a worker's dequeue blocks in Redis (BLMOVE) for as long as it is told to.
    client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=_TIMEOUT_S, health_check_interval=10)
    return RedisQueue(client, name=name, dump=orjson.dumps, load=orjson.loads)


class WorkQueue:
    """Enqueues jobs (deduplicated by key) and follows them to their result, through Redis outages."""

    def __init__(
        self, redis_url: str, *, job_timeout_s: float, keep_s: float, outage_s: float = 30.0, new_work_s: float = 2.0
    ) -> None:
        self.queue = open_queue(redis_url)
        self._job_timeout_s = int(job_timeout_s)
        self._keep_s = max(1, int(keep_s))
        self._outage_s = outage_s
        self._new_work_s = new_work_s
        self._depth_task: asyncio.Task[None] | None = None

    async def run(self, function: str, key: str, kwargs: dict[str, Any], progress: Progress) -> dict[str, Any]:
        """Enqueue ``function(**kwargs)`` as job ``key`` (or join the one that is incomplete) and return its result.

        Raises `QueueUnavailable` when the state Redis cannot be reached to enqueue for ``new_work_s`` (new work is
        refused quickly), or, once enqueued, to follow the job for ``outage_s`` (a job in Redis outlives a restart
        of it); and `QueuedJobFailed` when the job ended failed or aborted.
        """
        await self._retrying(lambda: self._enqueue(function, key, kwargs), self._new_work_s)
        started = False
        seen = 0
        while True:
            job = await self._retrying(lambda: self.queue.job(key), self._outage_s)
            if job is None:
                # Gone: expired, or lost with a state Redis that had no AOF. The work is idempotent: ask again.
                log.warning("queued job %s vanished; enqueuing it again", key)
                await self._retrying(lambda: self._enqueue(function, key, kwargs), self._outage_s)
            elif job.status == Status.COMPLETE:
                progress.on_bytes(int(job.meta.get("bytes_received", seen)))
                return dict(job.result or {})
            elif job.status in (Status.FAILED, Status.ABORTED):
                raise QueuedJobFailed(f"{job.status.value} after {job.attempts} attempt(s): {_last_line(job.error)}")
            elif job.status == Status.ACTIVE:
                if not started:
                    started = True
                    progress.on_start()
                seen = max(seen, int(job.meta.get("bytes_received", 0)))
                progress.on_bytes(seen)
            await asyncio.sleep(POLL_S)

    async def _enqueue(self, function: str, key: str, kwargs: dict[str, Any]) -> None:
        # None when a job with this key is incomplete: that job is followed instead.
        await self.queue.enqueue(
            function,
            key=key,
            kwargs=kwargs,
            timeout=self._job_timeout_s,
            heartbeat=HEARTBEAT_S,
            retries=ATTEMPTS,
            retry_delay=1.0,
            ttl=self._keep_s,
        )

    async def _retrying(self, call: Callable[[], Any], outage_s: float) -> Any:
        """Await ``call()``, trying again every second while the state Redis cannot be reached, up to ``outage_s``."""
        deadline = time.monotonic() + outage_s
        while True:
            try:
                return await call()
            except (RedisError, OSError) as error:
                if time.monotonic() >= deadline:
                    reason = f"the state Redis holding the job queue cannot be reached ({error})"
                    raise QueueUnavailable(reason) from error
                log.warning("job queue unreachable (%s); trying again", error)
                await asyncio.sleep(min(1.0, outage_s))

    def watch_depth(self) -> None:
        """Keep the queue's depth in the metrics, read every two seconds (see `publish_depth`)."""
        self._depth_task = asyncio.ensure_future(publish_depth(self.queue))

    async def close(self) -> None:
        """Stop watching and close the connections."""
        if self._depth_task is not None:
            self._depth_task.cancel()
            await asyncio.gather(self._depth_task, return_exceptions=True)
        with suppress(RedisError, OSError):
            await self.queue.disconnect()


async def publish_depth(queue: RedisQueue, every_s: float = 2.0) -> None:
    """Set ``tess_queue_jobs{state}`` (queued, active, scheduled) from the queue every ``every_s``, until cancelled."""
    while True:
        try:
            queued = await queue.count("queued")
            active = await queue.count("active")
            scheduled = await queue.count("incomplete") - queued - active
        except (RedisError, OSError):
            queued = active = scheduled = -1  # unknown while the state Redis cannot be reached
        QUEUE_JOBS.labels("queued").set(queued)
        QUEUE_JOBS.labels("active").set(active)
        QUEUE_JOBS.labels("scheduled").set(scheduled)
        await asyncio.sleep(every_s)


def _last_line(error: str | None) -> str:
    lines = [line for line in (error or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no error recorded"
