"""A clock that tests move by hand, so waiting out a TTL costs no time."""

from __future__ import annotations

import time

# Ahead of the system clock so that diskcache, which can only judge expiry by the system clock, never forgets an
# entry before this clock says it should, however slowly a loaded machine runs the test.
_LEAD_S = 3600.0


class FakeClock:
    """A wall clock (seconds since the epoch) that stands still until `advance` moves it."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() + _LEAD_S if start is None else start

    def __call__(self) -> float:
        """Return the current time on this clock."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.now += seconds
