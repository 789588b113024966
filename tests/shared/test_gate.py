"""The politeness gate over a real redis-server: two gates stand for two processes sharing MAST's limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.infra.shared_gate import GateUnavailable, SharedGate
from tests.redis_server import RedisServer, redis_server

pytestmark = [pytest.mark.anyio, pytest.mark.process, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("state")) as running:
        yield running


@pytest.fixture(autouse=True)
def _empty(server: RedisServer) -> None:
    client = server.client()
    client.flushall()
    client.close()


def most_within_a_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def test_two_processes_together_keep_both_limits(server: RedisServer) -> None:
    gates = [SharedGate(server.url, "t1", in_flight=3, starts_per_s=5) for _ in range(2)]
    running = 0
    most = 0
    starts: list[float] = []

    async def call(gate: SharedGate) -> None:
        nonlocal running, most
        async with gate.slot():
            starts.append(time.monotonic())
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.8)  # four start intervals: without the in-flight limit, 4 would overlap
            running -= 1

    await asyncio.gather(*(call(gates[n % 2]) for n in range(12)))
    assert len(starts) == 12
    assert most == 3, most  # the limit reached, never passed
    assert most_within_a_second(starts) <= 5
    gaps = [later - earlier for earlier, later in zip(sorted(starts), sorted(starts)[1:], strict=False)]
    assert min(gaps) > 0.2, gaps  # spaced one interval (0.23 s) apart, whichever process started
    for gate in gates:
        await gate.close()


async def test_a_killed_holder_frees_its_slot_when_its_lease_runs_out(server: RedisServer) -> None:
    gate = SharedGate(server.url, "t2", in_flight=1, starts_per_s=5, lease_s=0.6)
    # A holder that died mid-call: its lease is there, and nobody extends or removes it.
    assert await gate._take(keys=["tess:gate:t2:leases"], args=["dead", 600, 1])
    began = time.monotonic()
    async with gate.slot():
        waited = time.monotonic() - began
    assert 0.3 < waited < 5, waited
    await gate.close()


async def test_a_long_call_keeps_its_lease(server: RedisServer) -> None:
    first = SharedGate(server.url, "t3", in_flight=1, starts_per_s=5, lease_s=0.3)
    second = SharedGate(server.url, "t3", in_flight=1, starts_per_s=5, lease_s=0.3)
    order: list[str] = []

    async def long_call() -> None:
        async with first.slot():
            order.append("long begins")
            await asyncio.sleep(1.0)  # three leases long: extended while it runs
            order.append("long ends")

    async def later_call() -> None:
        await asyncio.sleep(0.1)
        async with second.slot():
            order.append("later begins")

    await asyncio.gather(long_call(), later_call())
    assert order == ["long begins", "long ends", "later begins"]
    await first.close()
    await second.close()


async def test_without_redis_the_gate_fails_closed_at_once(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        url = server.url
    gate = SharedGate(url, "t4", in_flight=1, starts_per_s=5)
    began = time.monotonic()
    with pytest.raises(GateUnavailable, match="state Redis"):
        async with gate.slot():
            pytest.fail("entered without Redis")
    assert time.monotonic() - began < 3
    await gate.close()
