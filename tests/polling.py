"""Waiting in tests, one way: follow a job to its end, or wait until a condition holds.

Every wait has a deadline and fails saying what it waited for, so a test that hangs on a loaded machine says where.
`poll_job` and `wait_until_async` serve tests on the in-process app (an `httpx.AsyncClient`, on the event loop);
`poll_job_sync` and `wait_until` serve tests that talk to a service process, or watch threads, from plain code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx

T = TypeVar("T")
Job = dict[str, Any]

# Generous: a deadline only bounds a failing test, and a busy machine (xdist workers on two cores) is slow.
JOB_TIMEOUT_S = 60.0
JOB_INTERVAL_S = 0.05
INTERVAL_S = 0.01


class Getter(Protocol):
    """Anything that GETs a URL (or a path, on a client with a base URL): `httpx.Client`, a process wrapper."""

    def get(self, url: str) -> httpx.Response: ...


def ended(job: Job) -> bool:
    """Return whether ``job`` (a /jobs answer) is done or failed."""
    return job["status"] in ("done", "failed")


def wait_until(predicate: Callable[[], T], timeout_s: float, *, what: str, interval_s: float = INTERVAL_S) -> T:
    """Call ``predicate`` until it returns something true and return that; fail after ``timeout_s`` naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(interval_s)
    return result


async def wait_until_async(
    predicate: Callable[[], T], timeout_s: float, *, what: str, interval_s: float = INTERVAL_S
) -> T:
    """`wait_until` on the event loop: sleeps without blocking it, so the work awaited can get on."""
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        await asyncio.sleep(interval_s)
    return result


def job_location(job: str | httpx.Response) -> str:
    """Return the job URL of a 202 answer (checked to be one), or ``job`` itself when it is already a URL."""
    if isinstance(job, str):
        return job
    assert job.status_code == 202, f"expected 202 and a job, got {job.status_code}: {job.text[:300]}"
    return job.headers["location"]


def _reached(answer: httpx.Response, until: Callable[[Job], bool]) -> httpx.Response | None:
    assert answer.status_code == 200, f"{answer.request.url} answered {answer.status_code}: {answer.text[:300]}"
    return answer if until(answer.json()) else None


async def poll_job(
    client: httpx.AsyncClient,
    job: str | httpx.Response,
    *,
    until: Callable[[Job], bool] = ended,
    what: str = "to end",
    timeout_s: float = JOB_TIMEOUT_S,
) -> httpx.Response:
    """Follow ``job`` (a 202 answer or its Location) until ``until`` holds for it, by default until it has ended.

    Returns the last /jobs answer. ``until`` sees every answer, so it may also record progress or check each state.
    """
    url = job_location(job)
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await client.get(url)
        if reached := _reached(answer, until):
            return reached
        assert time.monotonic() < deadline, (
            f"timed out after {timeout_s:g} s waiting for job {url} {what}: {answer.text}"
        )
        await asyncio.sleep(JOB_INTERVAL_S)


def poll_job_sync(
    client: Getter,
    job: str | httpx.Response,
    *,
    until: Callable[[Job], bool] = ended,
    what: str = "to end",
    timeout_s: float = JOB_TIMEOUT_S,
) -> httpx.Response:
    """`poll_job` for a client that blocks (a service process over real HTTP)."""
    url = job_location(job)
    return wait_until(
        lambda: _reached(client.get(url), until), timeout_s, what=f"job {url} {what}", interval_s=JOB_INTERVAL_S
    )
