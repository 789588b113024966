"""Hearing that the server was told to stop as soon as it was, not when the lifespan's shutdown finally runs.

uvicorn runs the lifespan's shutdown only after the requests in flight have finished or its grace period has run
out, which is too late to answer requests that wait for long work: uvicorn cancels them and their clients see a
dropped connection. uvicorn (like gunicorn's workers) handles SIGTERM and SIGINT with a Python handler while it
serves; `termination_hook` wraps that handler: the server's runs first, unchanged, then ``callback`` is scheduled
on the event loop. Outside the main thread, or where no server handler is installed (an app run in-process by
tests), it does nothing: signals stay the host's business.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def termination_hook(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` on the running event loop whenever the server's SIGTERM/SIGINT handler runs, in the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    installed: dict[int, tuple[Any, Callable[[int, FrameType | None], None]]] = {}
    for signum in TERMINATION_SIGNALS:
        previous = signal.getsignal(signum)
        # Only a server's own Python handler is chained: SIG_DFL/SIG_IGN are not callables, and Python's default
        # SIGINT handler (KeyboardInterrupt) means no server is handling the signal.
        if not callable(previous) or previous is signal.default_int_handler:
            continue

        chained = _chain(previous, lambda: loop.call_soon_threadsafe(callback))
        signal.signal(signum, chained)
        installed[signum] = (previous, chained)
    try:
        yield
    finally:
        for hooked, (previous, chained) in installed.items():
            if signal.getsignal(hooked) is chained:  # unless someone replaced ours meanwhile
                signal.signal(hooked, previous)


def _chain(
    handler: Callable[[int, FrameType | None], Any], then: Callable[[], object]
) -> Callable[[int, FrameType | None], None]:
    def chained(received: int, frame: FrameType | None) -> None:
        handler(received, frame)
        then()

    return chained
