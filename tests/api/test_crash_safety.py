"""SIGKILL mid-download and mid-cache-write, restart on the same cache: nothing partial or corrupt is ever served.

The service runs as its own uvicorn process on one cache directory; the test kills it with SIGKILL where it
hurts, starts it again on the same directory and checks that the cutout it then serves is byte for byte the one a
clean run serves. A cache file corrupted on disk is caught by its checksum, dropped and fetched again.
"""

from __future__ import annotations

import hashlib
import io
import signal
import sqlite3
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_mast import FakeMast
from tests.polling import poll_job_sync, wait_until
from tests.service_process import service_env, spawn, uvicorn_command

pytestmark = pytest.mark.process

ASTROCUT = "/tesscut/api/v0.1/astrocut"
# A 20x20 cutout of sector 1: a FITS file of several MiB, more than the 4 MiB a paused cache write has written.
CUTOUT = "/cutout"
PARAMS = {"ra": 340.8004, "dec": -36.3439, "sector": 1, "size": 20}
PAUSED_AT_BYTES = 4 * 1024 * 1024  # diskcache copies files in 4 MiB chunks; the test hook stalls after the first


class Service:
    """One uvicorn process of the service on a given cache directory, killable and restartable."""

    def __init__(self, mast: FakeMast, cache_dir: Path, port: int) -> None:
        self.mast, self.cache_dir, self.port = mast, cache_dir, port
        self.base = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **env: str) -> None:
        environment = service_env(
            self.mast,
            self.cache_dir,
            TESS_SERVICE_TESSCUT_BACKOFF_S="0.05",
            TESS_SERVICE_LOG_LEVEL="warning",
            TESS_SERVICE_ACCESS_LOG="false",
            **env,
        )
        self.process = spawn(uvicorn_command(self.port), environment, self.base)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(self.base + path, params=params, timeout=60)


@pytest.fixture
def service(mast: FakeMast, tmp_path: Path, unused_tcp_port: int) -> Iterator[Service]:
    running = Service(mast, tmp_path / "service-cache", unused_tcp_port)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def clean_sha256(mast: FakeMast) -> str:
    """The SHA-256 of the target pixel file MAST itself sends for the cutout (the service serves it unmodified)."""
    query = {"ra": PARAMS["ra"], "dec": PARAMS["dec"], "x": PARAMS["size"], "y": PARAMS["size"], "units": "px"}
    response = httpx.get(mast.url + ASTROCUT, params={**query, "sector": PARAMS["sector"]}, timeout=60)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        (member,) = archive.namelist()
        digest = hashlib.sha256(archive.read(member)).hexdigest()
    mast.reset()
    return digest


def value_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("??/??/*.val"))


def committed_files(cache_dir: Path) -> set[Path]:
    with sqlite3.connect(cache_dir / "cache.db") as db:
        rows = db.execute("SELECT filename FROM Cache WHERE filename IS NOT NULL").fetchall()
    return {cache_dir / name for (name,) in rows}


def fetch_sha256(service: Service) -> str:
    response = service.get(CUTOUT, **PARAMS, wait=30)
    assert response.status_code == 200, response.text
    assert len(response.content) == int(response.headers["content-length"])
    return hashlib.sha256(response.content).hexdigest()


def test_kill_mid_download_then_restart_serves_the_whole_cutout_and_catches_corruption(service, mast, clean_sha256):
    expected = clean_sha256
    mast.reset()
    service.start()
    mast.set_fault(ASTROCUT, throttle_bytes_per_s=500_000, times=1)
    accepted = service.get(CUTOUT, **PARAMS, wait=0)
    assert accepted.status_code == 202
    job = accepted.headers["location"]
    poll_job_sync(service, job, until=lambda state: state["bytes_received"] > 0, what="to start its download")
    service.kill()
    partial = list((service.cache_dir / "incoming").rglob("*.zip"))
    assert partial and all(p.stat().st_size > 0 for p in partial), "killed with a partial download in scratch"
    assert not value_files(service.cache_dir), "nothing of the cutout entered the cache"

    service.start()
    assert not (service.cache_dir / "incoming").exists() or not any((service.cache_dir / "incoming").iterdir())
    assert fetch_sha256(service) == expected
    assert mast.count(endpoint="tesscut.astrocut") == 2, "fetched again after the restart"

    # Then the cached file is corrupted on disk: its checksum catches it before a byte is sent.
    assert fetch_sha256(service) == expected and mast.count(endpoint="tesscut.astrocut") == 2
    largest = max(value_files(service.cache_dir), key=lambda p: p.stat().st_size)  # the FITS file
    with largest.open("r+b") as file:
        file.seek(largest.stat().st_size // 2)
        file.write(b"\x00corrupt\xff")
    assert fetch_sha256(service) == expected, "the corrupt bytes were never sent"
    assert mast.count(endpoint="tesscut.astrocut") == 3, "the dropped entry was fetched again"
    assert "tess_cache_corrupt_total 1.0" in service.get("/metrics").text


def test_kill_mid_cache_write_then_restart_serves_the_whole_cutout(service, mast, clean_sha256):
    expected = clean_sha256
    service.start(TESS_SERVICE_CACHE_WRITE_PAUSE_S="60")  # the documented test hook: stall inside the copy

    def paused_mid_write() -> bool:
        committed = committed_files(service.cache_dir)
        # Paused after the first 4 MiB chunk (the cutout is ~10 MB): the copy is half done and stays so.
        return any(p not in committed and p.stat().st_size == PAUSED_AT_BYTES for p in value_files(service.cache_dir))

    assert service.get(CUTOUT, **PARAMS, wait=0).status_code == 202
    wait_until(paused_mid_write, 30, what="the cache write to begin", interval_s=0.02)
    service.kill()
    orphans = [p for p in value_files(service.cache_dir) if p not in committed_files(service.cache_dir)]
    assert orphans and orphans[0].stat().st_size == PAUSED_AT_BYTES, "killed with a half-copied file"

    service.start()
    assert not any(p.exists() for p in orphans), "the orphan was swept at start-up"
    assert fetch_sha256(service) == expected
    assert mast.count(endpoint="tesscut.astrocut") == 2, "fetched again after the restart"
