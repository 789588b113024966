"""Shared benchmark plumbing: the emulator and the service as processes on loopback, and latency sampling."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class MastAddress(Protocol):
    """Where the service finds MAST: an in-process `tests.fake_mast.FakeMast` or an `EmulatorProcess`."""

    @property
    def url(self) -> str: ...

    @property
    def exomast_url(self) -> str: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[Any], what: str, timeout_s: float = 30.0) -> None:
    """Poll ``url`` until it answers; fail loudly if ``process`` exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before answering {url}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer {url} within {timeout_s:.0f} s")


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it does not stop within 30 s."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class EmulatorProcess:
    """The MAST emulator as its own process (``python -m tests.fake_mast``), driven over its /__fake__/ API."""

    url: str
    pid: int

    @property
    def exomast_url(self) -> str:
        return self.url + "/api/v0.1/"

    def set_fault(self, path_glob: str, **fault: object) -> None:
        """Inject a fault (the keywords of `FakeMast.set_fault`: status, delay_s, throttle_bytes_per_s, ...)."""
        response = httpx.post(f"{self.url}/__fake__/faults", json={"path": path_glob, **fault}, timeout=5)
        response.raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.url}/__fake__/faults", timeout=5).raise_for_status()

    def counters(self) -> dict[str, dict[str, int]]:
        response = httpx.get(f"{self.url}/__fake__/counters", timeout=5)
        response.raise_for_status()
        result: dict[str, dict[str, int]] = response.json()
        return result


@contextmanager
def server_process(command: list[str], probe_url: str, what: str, **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """Run ``command`` (Popen keywords: cwd, env, ...) until the block ends, once ``probe_url`` answers."""
    process = subprocess.Popen(command, **popen)
    try:
        wait_until_up(probe_url, process, what)
        yield process
    finally:
        stop_process(process)


@contextmanager
def mast_process() -> Iterator[EmulatorProcess]:
    """Run the MAST emulator in a subprocess on a free loopback port, so it does not share this process's GIL."""
    port = free_port()
    command = [sys.executable, "-m", "tests.fake_mast", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with server_process(
        command, f"{url}/__fake__/faults", "the MAST emulator", cwd=ROOT, stdout=subprocess.DEVNULL
    ) as p:
        yield EmulatorProcess(url, p.pid)


@dataclass
class RunningService:
    base_url: str
    pid: int
    cache_dir: Path


@contextmanager
def service_process(
    mast: MastAddress, *, uvicorn_args: Sequence[str] = (), root: Path = ROOT, **settings: str
) -> Iterator[RunningService]:
    """Run `uvicorn service.main:app` (one worker) pointed at ``mast``, with a fresh cache; TESS_SERVICE_* overrides.

    ``uvicorn_args`` are extra command-line options (e.g. ``["--http", "h11"]``); ``root`` is the tree whose
    ``service`` package runs (another copy of it, to measure a change before making it).
    """
    port = free_port()
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    env = {
        **os.environ,
        "TESS_SERVICE_EXOMAST_URL": mast.exomast_url,
        "TESS_SERVICE_MAST_URL": mast.url,
        "TESS_SERVICE_SKYBOT_URL": mast.url + "/webservices/skybot/api/conesearch.php",  # the emulator's SkyBoT
        "TESS_SERVICE_CACHE_DIR": str(cache_dir),
        **{f"TESS_SERVICE_{name.upper()}": value for name, value in settings.items()},
    }
    command = [
        sys.executable, "-m", "uvicorn", "service.main:app", "--port", str(port), "--log-level", "warning",
        *uvicorn_args,
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=root, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base_url}/health", server, "the service")
        yield RunningService(base_url, server.pid, cache_dir)
    finally:
        stop_process(server)
        shutil.rmtree(cache_dir, ignore_errors=True)


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
