import asyncio

import pytest

from service.infra.singleflight import SingleFlight

pytestmark = pytest.mark.anyio


async def test_concurrent_callers_share_one_run():
    flights = SingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work():
        nonlocal runs
        runs += 1
        await release.wait()
        return runs

    callers = [asyncio.create_task(flights.run("k", work)) for _ in range(10)]
    await asyncio.sleep(0)
    assert flights.in_flight("k")
    release.set()
    assert await asyncio.gather(*callers) == [1] * 10
    assert not flights.in_flight("k")


async def test_failures_are_not_remembered():
    flights = SingleFlight()
    attempts = 0

    async def flaky():
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("upstream down")
        return "ok"

    with pytest.raises(RuntimeError):
        await flights.run("k", flaky)
    assert await flights.run("k", flaky) == "ok"


async def test_a_caller_going_away_does_not_cancel_the_work():
    flights = SingleFlight()
    finished = asyncio.Event()

    async def work():
        await asyncio.sleep(0.05)
        finished.set()
        return 1

    caller = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.wait_for(finished.wait(), 1)
    assert finished.is_set()
