"""Background jobs for slow work: a request waits a while, then gets 202 and a ``/jobs/{id}`` to poll.

A job is an asyncio task held by the registry, not by the request: it keeps running when the client goes away,
and its result lands in the cache. Identical work shares one job while it runs; a failed job is kept for
inspection but the next request starts a fresh one (failures are not remembered).

A new job may need a place in a work pool (`Admission`): when the pool is full, starting it raises `Overloaded`
(503) at once, while joining a running job never does. At shutdown, running jobs are cancelled and end failed
with `ServiceRestarting`; their work leaves nothing partial in the cache, so asking again starts afresh.

Requests that wait for a job wait through `JobRegistry.wait`. When the server is told to stop (`begin_shutdown`,
on SIGTERM), they stop waiting shortly before its grace period ends and are answered 503 `service-restarting`,
rather than being cut off by the server with no answer at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal

from service.errors import CoordinationUnavailable, ServiceError, ServiceRestarting
from service.infra.metrics import JOBS
from service.infra.shared_jobs import BoardUnavailable, SharedJobBoard
from service.infra.threads import Admission, Ticket, handing_over
from service.problem_documents import error_body, status_of
from service.services.pools import overloaded_when_full

JobStatus = Literal["queued", "running", "done", "failed"]
log = logging.getLogger(__name__)
# At shutdown, requests waiting for jobs are answered this long before the server's grace period ends: time to
# write a problem document and close the connection.
ANSWER_MARGIN_S = 2.0
RESTART_RETRY_AFTER_S = 5
# How often a running job's view (its bytes received) is published for the other replicas.
PUBLISH_EVERY_S = 1.0
# How long a 202 waits for its job to be published (a board that does not answer costs no more than this).
ANNOUNCE_WAIT_S = 2.0


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
    ticket: Ticket | None = None
    # Set once the job's view is published for the other replicas (with a board).
    announced: asyncio.Event = field(default_factory=asyncio.Event)

    def mark(self, status: JobStatus) -> None:
        """Move to ``status``."""
        JOBS.labels(self.status).dec()
        JOBS.labels(status).inc()
        self.status = status
        self.updated_at = time.time()

    def release_place(self) -> None:
        """Give back the job's place in its pool (when it ends, or earlier when its work moved elsewhere)."""
        if self.ticket is not None:
            self.ticket.release()

    def received(self) -> int:
        """Return the bytes received so far (live while running, final afterwards)."""
        if self.progress is not None and self.status in ("queued", "running"):
            try:
                self.bytes_received = max(self.bytes_received, self.progress())
            except OSError:
                pass  # the download directory is being replaced between attempts
        return self.bytes_received

    def view(self) -> dict[str, Any]:
        """Return what `/jobs/{id}` shows: the public view and, when it failed, its problem document."""
        view = self.as_json()
        view["problem"] = error_body(self.error, f"/jobs/{self.id}") if self.error is not None else None
        return view

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

    def __init__(self, keep_s: float, board: SharedJobBoard | None = None) -> None:
        self._keep_s = keep_s
        self._board = board
        self._by_id: dict[str, Job] = {}
        self._running: dict[str, Job] = {}
        self._closing = False
        self._stop_waiting: asyncio.Future[None] | None = None

    def get(self, job_id: str) -> Job | None:
        """Return a job by id, unless it ended more than ``keep_s`` ago."""
        self._forget_old()
        return self._by_id.get(job_id)

    async def find_view(self, job_id: str) -> dict[str, Any] | None:
        """Return the view of a job this replica holds, else (with a board) the one another replica published.

        Raises `CoordinationUnavailable` (503) when the job is not here and the board cannot be read.
        """
        job = self.get(job_id)
        if job is not None:
            return job.view()
        if self._board is None:
            return None
        try:
            return await self._board.read(job_id)
        except BoardUnavailable as error:
            raise CoordinationUnavailable(
                f"Job {job_id} is not held by this replica, and the Redis where replicas publish their jobs cannot "
                f"be reached ({error}). Try again shortly.",
                retry_after_s=RESTART_RETRY_AFTER_S,
            ) from error

    async def _publish_while_running(self, job: Job) -> None:
        """Publish the job's view now and every `PUBLISH_EVERY_S` until cancelled (its end is published apart)."""
        assert self._board is not None
        while True:
            await self._board.publish(job.view())
            job.announced.set()
            await asyncio.sleep(PUBLISH_EVERY_S)

    async def announced(self, job: Job) -> None:
        """Return once every replica can find ``job`` (its view published), or after `ANNOUNCE_WAIT_S`.

        A 202 points at ``/jobs/{id}``, and the client's next request may reach another replica.
        """
        if self._board is not None and not job.announced.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(job.announced.wait(), ANNOUNCE_WAIT_S)

    def running(self, key: str) -> Job | None:
        """Return the running job for ``key``, if any."""
        return self._running.get(key)

    def start(
        self, key: str, result_url: str, work: Callable[[Job], Awaitable[None]], *, pool: Admission | None = None
    ) -> Job:
        """Return the running job for ``key``, or start ``work`` as a new one (admitted by ``pool`` if given).

        Raises `Overloaded` when ``pool`` has no room for a new job; joining a running one always succeeds.
        """
        running = self._running.get(key)
        if running is not None:
            return running
        self._forget_old()
        with overloaded_when_full():
            ticket = pool.admit() if pool is not None else None
        job = Job(id=uuid.uuid4().hex, key=key, result_url=result_url, ticket=ticket)
        JOBS.labels(job.status).inc()
        self._by_id[job.id] = job
        self._running[key] = job
        # The job's task must not inherit a ticket its starter is handing over (`handing_over`): it has its own.
        with handing_over(None):
            job.task = asyncio.ensure_future(self._run(job, work))
        return job

    async def _run(self, job: Job, work: Callable[[Job], Awaitable[None]]) -> None:
        publisher = asyncio.ensure_future(self._publish_while_running(job)) if self._board is not None else None
        try:
            await work(job)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # Only `shutdown` cancels jobs; ending the task normally (failed) lets anyone waiting read why.
            job.error = ServiceRestarting(
                "The service was restarting while this job ran, so it was stopped; nothing partial was kept. "
                "Ask again: the work starts afresh.",
                retry_after_s=RESTART_RETRY_AFTER_S,
            )
            job.mark("failed")
        except ServiceError as exc:
            job.error = exc
            job.mark("failed")
        except Exception as exc:  # noqa: BLE001 - a job must end in a state a client can read
            log.exception("job %s (%s) crashed", job.id, job.result_url)
            job.error = ServiceError(f"The job failed unexpectedly ({type(exc).__name__}); this is a bug.")
            job.mark("failed")
        else:
            job.received()
            job.mark("done")
        finally:
            if job.error is not None:
                log.warning(
                    "job %s (%s) failed, %d: %s", job.id, job.result_url, status_of(job.error), job.error.detail
                )
            job.release_place()
            self._running.pop(job.key, None)
            if publisher is not None:
                publisher.cancel()
                await asyncio.gather(publisher, return_exceptions=True)
                assert self._board is not None
                await self._board.publish(job.view(), final=True)
                job.announced.set()

    def _forget_old(self) -> None:
        horizon = time.time() - self._keep_s
        for job_id in [j.id for j in self._by_id.values() if j.status in ("done", "failed") and j.updated_at < horizon]:
            JOBS.labels(self._by_id.pop(job_id).status).dec()

    def _stop_waiting_future(self) -> asyncio.Future[None]:
        if self._stop_waiting is None:
            self._stop_waiting = asyncio.get_running_loop().create_future()
        return self._stop_waiting

    async def wait(self, task: asyncio.Future[Any], timeout_s: float | None = None) -> None:
        """Wait until ``task`` ends, ``timeout_s`` passes, or (shutting down) requests must stop waiting.

        Never cancels ``task``, not even when the caller is cancelled: the work may be shared. Callers check
        `raise_if_stopping` when the task has not ended.
        """
        await asyncio.wait({task, self._stop_waiting_future()}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)

    def raise_if_stopping(self) -> None:
        """Raise `ServiceRestarting` (503) once requests must stop waiting for jobs because the service stops."""
        if self._stop_waiting is not None and self._stop_waiting.done():
            raise ServiceRestarting(
                "The service is restarting, so this request stopped waiting for its work, which is being stopped; "
                "nothing partial is kept. Ask again shortly: the work starts afresh.",
                retry_after_s=RESTART_RETRY_AFTER_S,
            )

    def begin_shutdown(self, grace_s: float) -> None:
        """Stop requests waiting for jobs just before the server's ``grace_s`` (it was told to stop) runs out.

        Requests waiting for jobs (`wait`) then answer 503 `service-restarting` while their connection is still
        open; the jobs themselves run on until `shutdown` cancels them.
        """
        stop = self._stop_waiting_future()

        def stop_waiting() -> None:
            if not stop.done():
                stop.set_result(None)

        asyncio.get_running_loop().call_later(max(0.0, grace_s - ANSWER_MARGIN_S), stop_waiting)

    async def shutdown(self) -> None:
        """Cancel running jobs (on application shutdown): they end failed with `ServiceRestarting`.

        Their work removes its scratch files as it unwinds and stores nothing partial, so after a restart the
        same request simply starts the work again.
        """
        self._closing = True
        stop = self._stop_waiting_future()
        if not stop.done():
            stop.set_result(None)
        tasks = [job.task for job in self._running.values() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in self._by_id.values():
            JOBS.labels(job.status).dec()
        self._by_id.clear()
