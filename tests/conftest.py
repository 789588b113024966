"""Shared fixtures: one MAST emulator over real loopback HTTP, and the service in-process on top of it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.main import create_app
from service.settings import Settings
from tests.fake_mast import FakeMast
from tests.service_process import free_port, running, service_env, uvicorn_command

WEIRD_TIC = 214568914
WEIRD_TCE = "s0001-s0001:TCE_1"
WASP126_TIC = 25155310
WASP18_TIC = 100100827


# Fixtures that start the service as its own process: a test using one is marked `process`.
PROCESS_FIXTURES = {"running_service", "fuzz_service", "browser_service", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `process` every test that starts the service through a fixture (the fixture cannot carry the mark)."""
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.process)


@pytest.fixture(scope="session")
def mast() -> Iterator[FakeMast]:
    """The MAST emulator, listening on a free loopback port for the whole session."""
    with FakeMast(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_mast(mast: FakeMast) -> None:
    """Each test starts with no faults and zeroed counters."""
    mast.reset()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_settings(mast: FakeMast, tmp_path: Path) -> Callable[..., Settings]:
    """Build settings pointed at the emulator with a fresh cache dir; keywords override fields."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "exomast_url": mast.exomast_url,
            "mast_url": mast.url,
            "skybot_url": mast.skybot_url,
            "cache_dir": tmp_path / "cache",
            "upstream_connect_timeout_s": 2.0,
            "upstream_read_timeout_s": 10.0,
            "tesscut_read_timeout_s": 30.0,
            "tesscut_backoff_s": 0.05,
            # Retries stay on (3 attempts, as in production) but wait milliseconds, not seconds.
            "upstream_backoff_s": 0.01,
            # Breakers only open in the tests about them: elsewhere a test's own failures must not change others.
            "breaker_failure_threshold": 1000,
            "job_wait_default_s": 30.0,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def make_client(
    make_settings: Callable[..., Settings],
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Open a client on a freshly started app (lifespan included); keywords override settings.

    ``cache_clock`` and ``breaker_clock`` replace the cache's and the circuit breakers' clocks (e.g. with a
    `tests.clock.FakeClock`, to expire entries or end a reset period without waiting).
    """

    @asynccontextmanager
    async def open_client(
        *,
        cache_clock: Callable[[], float] = time.time,
        breaker_clock: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(**overrides), cache_clock=cache_clock, breaker_clock=breaker_clock)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
                yield client

    return open_client


@pytest.fixture
async def client(
    make_client: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the app with default test settings."""
    async with make_client() as opened:
        yield opened


@pytest.fixture
def unused_tcp_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


@pytest.fixture
def running_service(mast: FakeMast, tmp_path: Path, unused_tcp_port: int) -> Iterator[str]:
    """The base URL of `uvicorn service.main:app` running as its own process against the emulator (own cache).

    For clients that must talk to a real server: astroquery in a child process, unmodified requests scripts.
    """
    base = f"http://127.0.0.1:{unused_tcp_port}"
    with running(uvicorn_command(unused_tcp_port), service_env(mast, tmp_path / "service-cache"), base):
        yield base
