"""Shutdown waits for worker threads that are still at work, whether their callers are still there or not."""

import asyncio
import threading

import pytest
from anyio import CapacityLimiter

from service.infra.threads import THREADS_AT_WORK, run_blocking
from tests.polling import wait_until_async

pytestmark = pytest.mark.anyio


async def test_drain_waits_for_a_thread_whose_caller_was_cancelled():
    release = threading.Event()
    entered = threading.Event()

    def slow_write() -> str:
        entered.set()
        release.wait(10)
        return "written"

    caller = asyncio.ensure_future(run_blocking(slow_write, limiter=CapacityLimiter(1), abandon_on_cancel=True))
    assert await asyncio.to_thread(entered.wait, 5)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert THREADS_AT_WORK.running == 1, "the caller is gone but its thread is still writing"
    assert await THREADS_AT_WORK.drain(timeout_s=0.05) is False

    release.set()
    assert await THREADS_AT_WORK.drain(timeout_s=5) is True
    assert THREADS_AT_WORK.running == 0


async def test_a_call_cancelled_before_its_thread_started_is_not_counted():
    limiter = CapacityLimiter(1)
    release = threading.Event()
    holder = asyncio.ensure_future(run_blocking(release.wait, 10, limiter=limiter))
    await wait_until_async(lambda: THREADS_AT_WORK.running, 5, what="the holder's thread to start")
    queued = asyncio.ensure_future(run_blocking(lambda: None, limiter=limiter))
    await asyncio.sleep(0.05)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    release.set()
    await holder
    assert await THREADS_AT_WORK.drain(timeout_s=5) is True
    assert THREADS_AT_WORK.running == 0
