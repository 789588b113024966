"""Background jobs for slow work: a request waits a while, then gets 202 and a ``/jobs/{id}`` to poll.

A job is an asyncio task held by the registry, not by the request: it keeps running when the client goes away,
and its result lands in the cache. Identical work shares one job while it runs; a failed job is kept for
inspection but the next request starts a fresh one (failures are not remembered).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from service.errors import ServiceError

JobStatus = Literal["queued", "running", "done", "failed"]


@dataclass
class Job:
    """One piece of background work and what a client may know about it."""

    id: str
    key: str
    result_url: str
    status: JobStatus = "queued"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    progress: Callable[[], int] | None = None
    bytes_received: int = 0
    error: ServiceError | None = None
    task: asyncio.Task[None] | None = None

    def mark(self, status: JobStatus) -> None:
        """Move to ``status``."""
        self.status = status
        self.updated_at = time.time()

    def received(self) -> int:
        """Return the bytes received so far (live while running, final afterwards)."""
        if self.progress is not None and self.status in ("queued", "running"):
            try:
                self.bytes_received = max(self.bytes_received, self.progress())
            except OSError:
                pass  # the download directory is being replaced between attempts
        return self.bytes_received

    def as_json(self) -> dict[str, Any]:
        """Return the public view of the job."""
        return {
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "bytes_received": self.received(),
            "result_url": self.result_url if self.status == "done" else None,
        }


class JobRegistry:
    """Starts, deduplicates and remembers jobs for ``keep_s`` seconds after they end."""

    def __init__(self, keep_s: float) -> None:
        self._keep_s = keep_s
        self._by_id: dict[str, Job] = {}
        self._running: dict[str, Job] = {}

    def get(self, job_id: str) -> Job | None:
        """Return a job by id, unless it ended more than ``keep_s`` ago."""
        self._forget_old()
        return self._by_id.get(job_id)

    def start(self, key: str, result_url: str, work: Callable[[Job], Awaitable[None]]) -> Job:
        """Return the running job for ``key``, or start ``work`` as a new one."""
        running = self._running.get(key)
        if running is not None:
            return running
        self._forget_old()
        job = Job(id=uuid.uuid4().hex, key=key, result_url=result_url)
        self._by_id[job.id] = job
        self._running[key] = job
        job.task = asyncio.ensure_future(self._run(job, work))
        return job

    async def _run(self, job: Job, work: Callable[[Job], Awaitable[None]]) -> None:
        try:
            await work(job)
        except ServiceError as exc:
            job.error = exc
            job.mark("failed")
        except Exception as exc:  # noqa: BLE001 - a job must end in a state a client can read
            job.error = ServiceError(f"The job failed unexpectedly ({type(exc).__name__}); this is a bug.")
            job.mark("failed")
        else:
            job.received()
            job.mark("done")
        finally:
            self._running.pop(job.key, None)

    def _forget_old(self) -> None:
        horizon = time.time() - self._keep_s
        for job_id in [j.id for j in self._by_id.values() if j.status in ("done", "failed") and j.updated_at < horizon]:
            del self._by_id[job_id]

    async def shutdown(self) -> None:
        """Cancel running jobs (on application shutdown): they end cleanly failed, nothing partial is cached."""
        tasks = [job.task for job in self._running.values() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
