"""Coalesce identical concurrent work into one task (async-lru semantics: failures are not remembered)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    """Run at most one ``fn`` per key at a time; every concurrent caller gets that run's result."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    def in_flight(self, key: str) -> bool:
        """Return whether work for ``key`` is running now."""
        return key in self._tasks

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Start ``fn`` for ``key`` unless it is already running, and await its result.

        The work is shielded: a caller that goes away (client disconnect) does not cancel it, so the
        result still lands in the cache for the next caller.
        """
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._tasks[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        result: T = await asyncio.shield(task)
        return result

    def _forget(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            # Mark the exception as retrieved: callers that are still waiting re-raise it themselves,
            # and nobody waiting is not an error worth a "never retrieved" warning.
            task.exception()
