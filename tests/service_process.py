"""The service as its own process against the emulator, for the tests that need a real server (an HTTP parser,
signals, a process to kill), started and awaited one way."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.fake_mast import FakeMast
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(mast: FakeMast, cache_dir: Path, **settings: str) -> dict[str, str]:
    """Return the environment of a service pointed at the emulator with ``cache_dir``; keywords add variables."""
    return {
        **os.environ,
        "TESS_SERVICE_EXOMAST_URL": mast.exomast_url,
        "TESS_SERVICE_MAST_URL": mast.url,
        "TESS_SERVICE_SKYBOT_URL": mast.skybot_url,
        "TESS_SERVICE_CACHE_DIR": str(cache_dir),
        **settings,
    }


def uvicorn_command(port: int) -> list[str]:
    """Return the command of `uvicorn service.main:app` on ``port``."""
    return [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip


def module_command() -> list[str]:
    """Return the command of `python -m service` (the container's; it takes its port from TESS_SERVICE_PORT)."""
    return [sys.executable, "-m", "service"]


def answering(process: subprocess.Popen[Any], base: str) -> bool:
    """Return whether the service at ``base`` answers /health; fail if its ``process`` has exited."""
    assert process.poll() is None, "the service exited during start-up"
    try:
        httpx.get(f"{base}/health", timeout=1)
    except httpx.TransportError:
        return False
    return True


def spawn(command: list[str], env: dict[str, str], base: str, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``command`` and return it once ``base``/health answers."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, **popen)
    try:
        wait_until(lambda: answering(process, base), 60, what="the service to start", interval_s=0.05)
    except BaseException:
        process.kill()
        process.communicate(timeout=30)
        raise
    return process


@contextmanager
def running(command: list[str], env: dict[str, str], base: str, **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """Run ``command`` while the block runs (see `spawn`); a process still running afterwards is killed."""
    process = spawn(command, env, base, **popen)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
