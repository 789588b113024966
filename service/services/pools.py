"""The work pools' refusals in the domain's terms: a full pool (infra's `PoolFull`) is `Overloaded` (503)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from service.errors import Overloaded
from service.infra.threads import PoolFull


@contextmanager
def overloaded_when_full() -> Iterator[None]:
    """Raise `Overloaded`, with the pool and its Retry-After, where a pool admission in the block is refused."""
    try:
        yield
    except PoolFull as full:
        raise Overloaded(str(full), pool=full.pool, retry_after_s=full.retry_after_s) from None
