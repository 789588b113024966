"""The one door to worker threads: every blocking call goes through `run_blocking` with a limiter of its kind.

Also the admission gates in front of the slow pools (cutouts, rendering): a limiter queues without bound, so a gate
admits at most ``running + waiting`` pieces of work and refuses the next one at once with `PoolFull`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

from service.infra.metrics import POOL_IN_USE, POOL_QUEUE_DEPTH, POOL_SHED

T = TypeVar("T")


class PoolFull(Exception):
    """A pool refused work: it already holds ``running + waiting`` pieces; try again in ``retry_after_s``."""

    def __init__(self, message: str, *, pool: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.pool = pool
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Limiters:
    """One capacity limiter per kind of blocking work, so one kind cannot starve another."""

    cpu: CapacityLimiter
    io: CapacityLimiter
    render: CapacityLimiter

    @classmethod
    def create(cls, *, cpu_threads: int, io_threads: int, render_threads: int = 1) -> Limiters:
        """Build the limiters; call inside the event loop (the lifespan)."""
        return cls(
            cpu=CapacityLimiter(cpu_threads), io=CapacityLimiter(io_threads), render=CapacityLimiter(render_threads)
        )


class _ThreadsAtWork:
    """How many `run_blocking` calls are still running in their threads, caller gone or not.

    A caller cancelled the asyncio way (a task cancelled at shutdown, ``asyncio.timeout``) returns while its thread
    runs on, so at shutdown the cache must not be closed under a thread still writing to it: `drain` waits for them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Event()
        self._idle.set()

    def started(self) -> None:
        """Count one more thread at work."""
        with self._lock:
            self._running += 1
            self._idle.clear()

    def finished(self) -> None:
        """Count one thread less."""
        with self._lock:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    @property
    def running(self) -> int:
        """Return how many threads are at work now."""
        return self._running

    async def drain(self, timeout_s: float) -> bool:
        """Wait (off the loop) until no thread is at work, up to ``timeout_s``; return whether they all finished."""
        if self._idle.is_set():
            return True
        return await anyio.to_thread.run_sync(self._idle.wait, timeout_s, abandon_on_cancel=True)


THREADS_AT_WORK = _ThreadsAtWork()


async def run_blocking(
    fn: Callable[..., T], *args: object, limiter: CapacityLimiter, abandon_on_cancel: bool = False
) -> T:
    """Run ``fn(*args)`` in a worker thread admitted by ``limiter``.

    A cancelled caller may return before the thread ends (always with ``abandon_on_cancel``, which is meant for
    work whose result may be thrown away, and also when cancelled the asyncio way); the thread runs its course and
    is counted in `THREADS_AT_WORK` until it does.
    """

    def counted() -> T:
        # Counted from inside the thread: a call cancelled before its thread started never runs, and must not count.
        THREADS_AT_WORK.started()
        try:
            return fn(*args)
        finally:
            THREADS_AT_WORK.finished()

    return await anyio.to_thread.run_sync(counted, limiter=limiter, abandon_on_cancel=abandon_on_cancel)


class Ticket:
    """One admitted piece of work's place in its pool; `release` gives it back (once, however often it is called)."""

    def __init__(self, gate: Admission) -> None:
        self.gate = gate
        self.released = False

    def release(self) -> None:
        """Give the place back."""
        if not self.released:
            self.released = True
            self.gate._leave()


# A ticket the current task may hand over to the work it starts (see `Admission.handing_over`).
_handover: ContextVar[Ticket | None] = ContextVar("admission_handover", default=None)


class Admission:
    """Admit at most ``running + waiting`` pieces of work into a pool; refuse more at once with `PoolFull`.

    ``running`` is what the pool works on at once (its threads or upstream slots), ``waiting`` how many more may
    queue for them. Admitted work counts until its ticket is released; the first ``running`` count as in use, the
    rest as waiting (the pool's metrics). Admitting is synchronous and never waits: the event loop stays free.
    """

    def __init__(self, pool: str, *, running: int, waiting: int, retry_after_s: int) -> None:
        self.pool = pool
        self.running = running
        self.waiting = waiting
        self.retry_after_s = retry_after_s
        self.admitted = 0
        self._publish()

    @property
    def limit(self) -> int:
        """Return how many pieces of work may be admitted at once."""
        return self.running + self.waiting

    def has_room(self) -> bool:
        """Return whether one more piece of work would be admitted now."""
        return self.admitted < self.limit

    def admit(self) -> Ticket:
        """Admit one piece of work, or raise `PoolFull` when the pool is full.

        A ticket of this pool being handed over by the current task (`handing_over`) is taken over instead: the
        work it stood for becomes this work, so the count does not change and no refusal can happen.
        """
        held = _handover.get()
        if held is not None and held.gate is self and not held.released:
            held.released = True  # its place now belongs to the new ticket
            return Ticket(self)
        self.refuse_if_full()
        self.admitted += 1
        self._publish()
        return Ticket(self)

    def refuse_if_full(self) -> None:
        """Raise `PoolFull` when the pool is full now, without taking a place.

        For work that will need a place later (a render after its data arrives): refused at once when the pool is
        already full, rather than after fetching what it would then have no room to use.
        """
        if not self.has_room():
            POOL_SHED.labels(self.pool).inc()
            raise PoolFull(
                f"The service is busy: its {self.pool} pool already has {self.running} pieces of work running and "
                f"{self.waiting} waiting. Try again in {self.retry_after_s} s; cached answers and work already "
                "under way are still served.",
                pool=self.pool,
                retry_after_s=self.retry_after_s,
            )

    @contextmanager
    def admitted_work(self) -> Iterator[None]:
        """Hold a place in the pool for the block's duration (raising `PoolFull` when there is none)."""
        ticket = self.admit()
        try:
            yield
        finally:
            ticket.release()

    def _leave(self) -> None:
        self.admitted -= 1
        self._publish()

    def _publish(self) -> None:
        POOL_IN_USE.labels(self.pool).set(min(self.admitted, self.running))
        POOL_QUEUE_DEPTH.labels(self.pool).set(max(0, self.admitted - self.running))


@contextmanager
def handing_over(ticket: Ticket | None) -> Iterator[None]:
    """Let work admitted inside the block (in this task) take over ``ticket`` rather than need a place of its own.

    For a stand-in: a job that holds a place while it works out what to do, then starts the real work.
    """
    token = _handover.set(ticket)
    try:
        yield
    finally:
        _handover.reset(token)
