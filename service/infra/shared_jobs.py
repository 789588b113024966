"""Jobs seen from every replica: each replica publishes its jobs' public views to Redis, and any replica reads them.

A job still runs in the replica that started it; what is shared is what `/jobs/{id}` shows (status, bytes received
so far, the result's URL, a failure's problem document), written when the job starts, every second while it runs
and when it ends, and kept as long as the replica keeps its own jobs. A replica asked for a job it does not hold
reads the view here. Views are JSON under ``tess:job:<id>``.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_TIMEOUT_S = 2.0
RUNNING_VIEW_S = 10.0


class BoardUnavailable(OSError):
    """Redis cannot be reached, so a job held by another replica cannot be looked up."""


class SharedJobBoard:
    """Job views in Redis, for ``keep_s`` after their last update."""

    def __init__(self, redis_url: str, *, keep_s: float, prefix: str = "tess:job:") -> None:
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S)
        self._keep_ms = max(1, int(keep_s * 1000))
        self._prefix = prefix

    async def publish(self, view: dict[str, Any], *, final: bool = False) -> None:
        """Write one job's view; a failure is logged (the job goes on; other replicas see an older view).

        A running job's view lives `RUNNING_VIEW_S`, renewed every second while its replica runs it: a replica that
        dies takes its jobs with it (they read as unknown, 404, within seconds), not "running" for an hour. The
        view of an ended job (``final``) is kept ``keep_s``.
        """
        ttl_ms = self._keep_ms if final else int(RUNNING_VIEW_S * 1000)
        try:
            await self._redis.set(self._prefix + str(view["id"]), orjson.dumps(view), px=ttl_ms)
        except (RedisError, OSError) as error:
            log.warning("could not publish job %s: %s", view["id"], error)

    async def read(self, job_id: str) -> dict[str, Any] | None:
        """Return the view of ``job_id``, or None; raises `BoardUnavailable` when Redis cannot be reached."""
        try:
            found = await self._redis.get(self._prefix + job_id)
        except (RedisError, OSError) as error:
            raise BoardUnavailable(f"the state Redis cannot be reached ({error})") from error
        return None if found is None else dict(orjson.loads(found))

    async def close(self) -> None:
        """Close the connection pool."""
        with suppress(RedisError, OSError):
            await self._redis.aclose()
