"""Shared benchmark plumbing: the service as its own uvicorn process against the emulator, and latency sampling."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_mast import FakeMast  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningService:
    base_url: str
    pid: int
    cache_dir: Path


@contextmanager
def service_process(mast: FakeMast, **settings: str) -> Iterator[RunningService]:
    """Run `uvicorn service.main:app` (one worker) pointed at ``mast``, with a fresh cache; TESS_SERVICE_* overrides."""
    port = free_port()
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    env = {
        **os.environ,
        "TESS_SERVICE_EXOMAST_URL": mast.exomast_url,
        "TESS_SERVICE_MAST_URL": mast.url,
        "TESS_SERVICE_CACHE_DIR": str(cache_dir),
        **{f"TESS_SERVICE_{name.upper()}": value for name, value in settings.items()},
    }
    command = [sys.executable, "-m", "uvicorn", "service.main:app", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base_url}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield RunningService(base_url, server.pid, cache_dir)
    finally:
        server.terminate()
        server.wait(30)


def warm_latencies_ms(client: httpx.Client, path: str, requests: int) -> list[float]:
    """Fill the cache with one GET of ``path``, check the next is a HIT, then time ``requests`` sequential GETs."""
    assert client.get(path).status_code == 200
    assert client.get(path).headers["x-cache"] == "HIT", path
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return samples


def p(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))
