"""Two service replicas (separate processes, their own disk caches) sharing one redis-server and one object store
(a `file://` directory), against the emulator: what one fetched from MAST, the other serves without asking again;
with Redis down, both go on serving, and /ready says what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fake_mast import FakeMast
from tests.polling import poll_job_sync, wait_until
from tests.redis_server import RedisServer, redis_server
from tests.service_process import free_port, running, service_env, uvicorn_command

pytestmark = [pytest.mark.process, pytest.mark.slow]

TIC = 214568914
SMALL = f"/tic/{TIC}/sectors"
CUTOUT = f"/tic/{TIC}/cutout?sector=1&size=12"


@dataclass
class Deployment:
    redis: RedisServer
    replicas: tuple[httpx.Client, httpx.Client]
    blob_dir: Path


@pytest.fixture(scope="module")
def deployment(mast: FakeMast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("replicas")
    blob_dir = root / "blobs"
    with redis_server(root) as redis:
        shared = {"TESS_SERVICE_CACHE_REDIS_URL": redis.url, "TESS_SERVICE_BLOB_STORE_URL": f"file://{blob_dir}"}
        ports = free_port(), free_port()
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        envs = [service_env(mast, root / f"cache-{n}", **shared) for n in (1, 2)]
        with (
            running(uvicorn_command(ports[0]), envs[0], bases[0]),
            running(uvicorn_command(ports[1]), envs[1], bases[1]),
            httpx.Client(base_url=bases[0], timeout=60) as one,
            httpx.Client(base_url=bases[1], timeout=60) as two,
        ):
            yield Deployment(redis, (one, two), blob_dir)


def fetched(client: httpx.Client, path: str) -> httpx.Response:
    answer = client.get(path)
    if answer.status_code == 202:
        poll_job_sync(client, answer, until=lambda job: job["status"] == "done")
        answer = client.get(path)
    assert answer.status_code == 200, answer.text[:500]
    return answer


def test_identical_cold_requests_over_both_replicas_make_one_call_and_one_render(
    deployment: Deployment, mast: FakeMast
) -> None:
    # Cold: the DV table must come from MAST. 50 at once, alternating replicas: one call to ExoMAST for all.
    answers, made = together(deployment, f"/tic/{TIC}/tces/TCE_1/lightcurve")
    assert {answer.status_code for answer in answers} == {200}
    assert mast.count(endpoint="exomast.table") == 1, mast.counters()
    assert len({answer.headers["etag"] for answer in answers}) == 1
    # The table is shared now; a plot nobody has drawn yet is drawn once, on one replica, for all 50.
    answers, made = together(deployment, f"/tic/{TIC}/tces/TCE_1/lightcurve.png?x=time&width=802")
    assert {answer.status_code for answer in answers} == {200}
    assert made == 1, f"{made} renders for one plot"
    assert len({answer.content for answer in answers}) == 1
    assert mast.count(endpoint="exomast.table") == 1


def together(deployment: Deployment, path: str, count: int = 50) -> tuple[list[httpx.Response], int]:
    """GET ``path`` ``count`` times at once, alternating replicas; return the answers and the answers made."""
    before = sum(productions(replica) for replica in deployment.replicas)
    with ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(lambda n: deployment.replicas[n % 2].get(path), range(count)))
    return answers, sum(productions(replica) for replica in deployment.replicas) - before


def productions(replica: httpx.Client) -> int:
    """The replica's `tess_productions_total`, read from its /metrics."""
    for line in replica.get("/metrics").text.splitlines():
        if line.startswith("tess_productions_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no tess_productions_total in /metrics")


def test_what_one_replica_fetched_the_other_serves_without_asking_mast(deployment: Deployment, mast: FakeMast) -> None:
    one, two = deployment.replicas
    first = fetched(one, SMALL)
    asked = mast.count()
    assert first.headers["x-cache"] == "MISS" and asked >= 1
    second = fetched(two, SMALL)
    assert mast.count() == asked, mast.counters()
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]


def test_a_cutout_crosses_replicas_through_the_object_store(deployment: Deployment, mast: FakeMast) -> None:
    one, two = deployment.replicas
    first = fetched(one, CUTOUT)
    assert mast.count(endpoint="tesscut.astrocut") == 1, mast.counters()
    assert len(first.content) > 256 * 1024, "small enough for Redis: this test would not reach the object store"
    assert any(deployment.blob_dir.glob("blobs/*"))
    second = fetched(two, CUTOUT)
    assert mast.count(endpoint="tesscut.astrocut") == 1, "the second replica asked TESScut again"
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]


def test_a_job_started_on_one_replica_is_followed_to_its_end_on_the_other(
    deployment: Deployment, mast: FakeMast
) -> None:
    one, two = deployment.replicas
    mast.set_fault("/tesscut/api/v0.1/astrocut", delay_s=1.5)  # so that the job is seen running
    started = one.get(f"/tic/{TIC}/cutout", params={"sector": 1, "size": 14, "wait": 0})
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    seen: list[str] = []

    def note(job: dict[str, object]) -> bool:
        seen.append(str(job["status"]))
        return job["status"] in ("done", "failed")

    done = poll_job_sync(two, location, until=note).json()  # the other replica, which never held the job
    assert done["status"] == "done" and done["problem"] is None, done
    assert "running" in seen or "queued" in seen, seen
    assert done["bytes_received"] > 0 and done["id"] == started.json()["id"]
    result = two.get(done["result_url"])  # made on replica one, served by two from the shared tier
    assert result.status_code == 200 and result.headers["x-cache"] == "HIT"
    assert mast.count(endpoint="tesscut.astrocut") == 1
    assert two.get("/jobs/" + "0" * 32).status_code == 404


def test_with_redis_down_replicas_serve_and_ready_says_degraded(deployment: Deployment, mast: FakeMast) -> None:
    one, two = deployment.replicas
    fetched(one, SMALL)
    for replica in (one, two):
        assert shared_check(replica)["state"] == "available"
    deployment.redis.stop()
    try:
        for replica in (one, two):
            ready = replica.get("/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
            assert shared_check(replica)["state"] == "unavailable"
        assert one.get(SMALL).status_code == 200  # on its own disk
        assert fetched(two, SMALL).status_code == 200  # on its disk from the first test, or from MAST: never a 5xx
        assert fetched(two, f"/tic/{TIC}/tces/1").status_code == 200
        # A job this replica does not hold cannot be looked up: a 503 that says why, not a 404.
        unknown = two.get("/jobs/" + "1" * 32)
        assert unknown.status_code == 503 and unknown.json()["retryable"] is True, unknown.text
    finally:
        deployment.redis.start()
    # Back without a restart of the service: the next readiness poll asks again.
    for replica in (one, two):
        wait_until(lambda r=replica: shared_check(r)["ok"], 10, what="the shared tier to be back", interval_s=0.1)


def shared_check(replica: httpx.Client) -> dict[str, object]:
    checks = replica.get("/ready").json()["checks"]
    return next(check for check in checks if check["name"] == "shared cache")
