"""The one door to worker threads: every blocking call goes through `run_blocking` with a limiter of its kind."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

T = TypeVar("T")


@dataclass(frozen=True)
class Limiters:
    """One capacity limiter per kind of blocking work, so one kind cannot starve another."""

    cpu: CapacityLimiter
    io: CapacityLimiter
    render: CapacityLimiter

    @classmethod
    def create(cls, *, cpu_threads: int, io_threads: int, render_threads: int = 1) -> "Limiters":
        """Build the limiters; call inside the event loop (the lifespan)."""
        return cls(
            cpu=CapacityLimiter(cpu_threads), io=CapacityLimiter(io_threads), render=CapacityLimiter(render_threads)
        )


async def run_blocking(
    fn: Callable[..., T], *args: object, limiter: CapacityLimiter, abandon_on_cancel: bool = False
) -> T:
    """Run ``fn(*args)`` in a worker thread admitted by ``limiter``.

    ``abandon_on_cancel`` lets a cancelled caller return at once while the thread finishes on its own; use it
    only for work whose result may be thrown away (a download at shutdown).
    """
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel)
