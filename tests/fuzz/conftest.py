"""One uvicorn process per fuzz module: starting the service (astropy, matplotlib imports) costs seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_mast import FakeMast

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def fuzz_service(mast: FakeMast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of `uvicorn service.main:app` against the emulator, shared by one module's tests.

    Cutout requests without `wait` answer 202 at once (`JOB_WAIT_DEFAULT_S=0`), so no case waits on TESScut work.
    """
    port = free_port()
    env = {
        **os.environ,
        "TESS_SERVICE_EXOMAST_URL": mast.exomast_url,
        "TESS_SERVICE_MAST_URL": mast.url,
        "TESS_SERVICE_CACHE_DIR": str(tmp_path_factory.mktemp("fuzz") / "cache"),
        "TESS_SERVICE_JOB_WAIT_DEFAULT_S": "0",
        "TESS_SERVICE_TESSCUT_BACKOFF_S": "0.05",
        # With wait=0 every distinct cold cutout or movie is new work at once: roomy queues keep deliberate
        # shedding (503 overloaded, which the checks accept) rare, so the cases reach what they test.
        "TESS_SERVICE_CUTOUT_QUEUE_MAX": "500",
        "TESS_SERVICE_RENDER_QUEUE_MAX": "500",
    }
    command = [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=env) as server:
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, "the service exited during start-up"
                try:
                    httpx.get(f"{base}/health", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the service did not start"
                    time.sleep(0.05)
            yield base
        finally:
            server.terminate()
            server.wait(30)
