"""Graceful shutdown of `python -m service` (a real process, as the container runs it) against the emulator.

On SIGTERM the service stops accepting connections, lets requests in flight finish, then stops its jobs: a cutout
job cut short leaves nothing in the cache, and the service started again on the same cache serves the cutout
whole, fetched afresh. A request still waiting for a job is answered (503 service-restarting) before the grace
period runs out, rather than cut off.
"""

from __future__ import annotations

import io
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from astropy.io import fits

from tests.conftest import WEIRD_TIC
from tests.polling import poll_job_sync, wait_until
from tests.service_process import module_command, running, service_env

pytestmark = pytest.mark.process

GRACE_S = 20
ASTROCUT = "/tesscut/api/v0.1/astrocut"
CUTOUT = {"ra": 340.8004, "dec": -36.3439, "sector": 1, "size": 10}  # a 417 kB zip


@contextmanager
def service_process(
    mast, cache_dir: Path, port: int, grace_s: int = GRACE_S
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run `python -m service` on ``port`` with ``cache_dir``; yields the process and its base URL."""
    env = service_env(
        mast,
        cache_dir,
        TESS_SERVICE_HOST="127.0.0.1",
        TESS_SERVICE_PORT=str(port),
        TESS_SERVICE_SHUTDOWN_GRACE_S=str(grace_s),
        TESS_SERVICE_LOG_FORMAT="text",
        TESS_SERVICE_ACCESS_LOG="false",
    )
    base = f"http://127.0.0.1:{port}"
    with running(module_command(), env, base, stderr=subprocess.PIPE, text=True) as process:
        yield process, base


def refused(base: str) -> bool:
    """Return whether a new connection to ``base`` is refused."""
    try:
        httpx.get(f"{base}/health", timeout=1)
    except httpx.ConnectError:
        return True
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # Queued by the kernel just as the listening socket closed, then reset: not refused yet, so ask again.
        pass
    return False


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM the service and return its exit code and what it logged."""
    process.send_signal(signal.SIGTERM)
    _, logged = process.communicate(timeout=GRACE_S + 10)
    return process.returncode, logged


def test_sigterm_lets_a_request_in_flight_finish_and_refuses_new_connections(mast, tmp_path, unused_tcp_port):
    mast.set_fault("/api/v0.1/dvdata/tess/*/tces/", delay_s=3.0)
    with service_process(mast, tmp_path / "cache", unused_tcp_port) as (process, base):
        answers: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: answers.append(httpx.get(f"{base}/tic/{WEIRD_TIC}/tces", timeout=30)))
        slow.start()
        wait_until(lambda: mast.count(endpoint="exomast.tces"), 30, what="the slow request to reach the emulator")
        assert mast.count(endpoint="exomast.tces") == 1, "the slow request reached the emulator"

        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refused(base), 5, what="new connections to be refused once shutdown starts")
        assert slow.is_alive(), "...while the request in flight is still being answered"

        slow.join(timeout=30)
        assert [answer.status_code for answer in answers] == [200]
        assert answers[0].json()["tces"][0]["id"] == "s0001-s0001:TCE_1"
        _, logged = process.communicate(timeout=GRACE_S + 10)
        assert process.returncode == 0, logged


def test_a_cutout_job_cut_short_by_shutdown_leaves_nothing_and_restarts_afresh(mast, tmp_path, unused_tcp_port):
    cache_dir = tmp_path / "cache"
    # About 3 s of download: still running when the service is stopped.
    mast.set_fault(ASTROCUT, throttle_bytes_per_s=150_000)
    with service_process(mast, cache_dir, unused_tcp_port) as (process, base):
        started = httpx.get(f"{base}/cutout", params={**CUTOUT, "wait": 0})
        assert started.status_code == 202
        with httpx.Client(base_url=base) as client:
            answer = poll_job_sync(client, started, until=lambda job: job["bytes_received"] > 0, what="to download")
        job = answer.json()
        assert job["status"] == "running" and job["bytes_received"] > 0
        code, logged = stop(process)
    assert code == 0, logged
    assert "was restarting while this job ran" in logged, "the job ended failed, saying why"
    scratch = cache_dir / "incoming"
    assert not scratch.exists() or not any(scratch.iterdir()), "the partial download was removed"

    mast.clear_faults()
    with service_process(mast, cache_dir, unused_tcp_port) as (process, base):
        served = httpx.get(f"{base}/cutout", params={**CUTOUT, "wait": 30}, timeout=60)
        assert served.status_code == 200
        assert served.headers["x-cache"] == "MISS", "nothing of the interrupted job was served"
        with fits.open(io.BytesIO(served.content)) as hdus:
            assert hdus["PIXELS"].data["FLUX"].shape == (1282, 10, 10)
        code, logged = stop(process)
    assert code == 0, logged
    assert mast.count(endpoint="tesscut.astrocut") == 2


def test_a_request_waiting_for_a_job_is_answered_before_the_grace_period_ends(mast, tmp_path, unused_tcp_port):
    # The download would take about 20 s and the request waits up to 60 s; the grace period is 3 s.
    mast.set_fault(ASTROCUT, throttle_bytes_per_s=20_000)
    with service_process(mast, tmp_path / "cache", unused_tcp_port, grace_s=3) as (process, base):
        answers: list[httpx.Response] = []

        def wait_for_cutout() -> None:
            answers.append(httpx.get(f"{base}/cutout", params={**CUTOUT, "wait": 60}, timeout=60))

        waiting = threading.Thread(target=wait_for_cutout)
        waiting.start()
        wait_until(lambda: mast.count(endpoint="tesscut.astrocut"), 30, what="the job's download to start")
        assert mast.count(endpoint="tesscut.astrocut") == 1, "the job is downloading"
        code, logged = stop(process)
        waiting.join(timeout=30)
    assert code == 0, logged
    assert len(answers) == 1, "the waiting request got an answer, not a dropped connection"
    answer = answers[0]
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) > 0
    assert answer.json()["type"] == "urn:tess-service:problem:service-restarting"
    assert answer.json()["retryable"] is True
