"""Cutouts on the job queue: two replicas and two `python -m service.worker` processes, a cache Redis, a state Redis
(AOF, noeviction), moto's S3 server and the emulator, each a process of its own on loopback.

The replicas enqueue; only the workers call TESScut. A job started through one replica is followed through the
other; a worker killed mid-cutout leaves its job to the other worker; the state Redis restarts under running jobs
and they finish; a flushed cache Redis costs refetches, not errors.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import pytest

from tests.fake_mast import FakeMast
from tests.polling import poll_job_sync, wait_until
from tests.redis_server import RedisServer, redis_server
from tests.s3_server import s3_server
from tests.service_process import free_port, running, service_env, spawn, uvicorn_command

pytestmark = [pytest.mark.process, pytest.mark.slow]

ASTROCUT = "/tesscut/api/v0.1/astrocut"
POSITION = {"ra": 107.27, "dec": -70.0, "sector": 1}
# Each test cuts sizes of its own (the 30-cutout test takes 20 to 49): what one test cached must not make another's
# cold cutout warm.


@dataclass
class Worker:
    env: dict[str, str]
    metrics: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = spawn([sys.executable, "-m", "service.worker"], self.env, self.metrics)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def metric(self, name: str) -> float:
        return metric(httpx.get(self.metrics, timeout=5).text, name)


@dataclass
class Deployment:
    cache: RedisServer
    state: RedisServer
    replicas: tuple[httpx.Client, httpx.Client]
    workers: list[Worker] = field(default_factory=list)


def metric(text: str, name: str) -> float:
    """Sum the samples of ``name`` (a full sample name with labels, or a bare name) in a metrics text (0 if none)."""
    family = name.split("{")[0]
    assert f"# TYPE {family} " in text, f"no {family} in the metrics"
    prefix = name if "{" in name else name + "{"
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix) or line.startswith(name + " "))  # fmt: skip


@pytest.fixture(scope="module")
def deployment(mast: FakeMast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("workers")
    (root / "cache-redis").mkdir()
    (root / "state-redis").mkdir()
    with (
        redis_server(root / "cache-redis") as cache,
        redis_server(root / "state-redis", persistent=True) as state,
        s3_server() as s3,
        ExitStack() as stack,
    ):
        shared = {
            "TESS_SERVICE_CACHE_REDIS_URL": cache.url,
            "TESS_SERVICE_STATE_REDIS_URL": state.url,
            "TESS_SERVICE_BLOB_STORE_URL": f"s3://{s3.bucket}/tess",
            "TESS_SERVICE_WORK_QUEUE": "true",
            **s3.env,
        }
        workers = []
        for n in (1, 2):
            port = free_port()
            env = service_env(mast, root / f"worker-{n}", TESS_SERVICE_WORKER_METRICS_PORT=str(port), **shared)
            workers.append(Worker(env, f"http://127.0.0.1:{port}"))
            workers[-1].start()
            stack.callback(workers[-1].stop)
        ports = free_port(), free_port()
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for n, (port, base) in enumerate(zip(ports, bases, strict=True)):
            stack.enter_context(running(uvicorn_command(port), service_env(mast, root / f"cache-{n}", **shared), base))
        one = stack.enter_context(httpx.Client(base_url=bases[0], timeout=120))
        two = stack.enter_context(httpx.Client(base_url=bases[1], timeout=120))
        yield Deployment(cache, state, (one, two), workers)


@pytest.fixture(autouse=True)
def workers_running(deployment: Deployment) -> None:
    """Every test starts with both workers up (one test kills one)."""
    for worker in deployment.workers:
        if worker.process is None:
            worker.start()


def fetched(client: httpx.Client, path: str, params: dict[str, object] | None = None) -> httpx.Response:
    answer = client.get(path, params=params)
    if answer.status_code == 202:
        # Long enough for one stalled object-store request (obstore gives up on one after 120 s, then retries).
        poll_job_sync(client, answer, until=lambda job: job["status"] in ("done", "failed"), timeout_s=300)
        answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text[:500]
    return answer


def tesscut_calls_by_replicas(deployment: Deployment) -> float:
    """The replicas' own cutout downloads from TESScut, from their /metrics (the workers' are not counted)."""
    texts = [replica.get("/metrics").text for replica in deployment.replicas]
    name = 'tess_upstream_requests_total{endpoint="astrocut"'
    return sum(float(line.rsplit(" ", 1)[1]) for text in texts for line in text.splitlines() if name in line)


def coordination(replica: httpx.Client) -> dict[str, object]:
    """The replica's readiness check of the state Redis."""
    return next(check for check in replica.get("/ready").json()["checks"] if check["name"] == "coordination")


def emulator_fits(mast: FakeMast, params: dict[str, object]) -> bytes:
    """What TESScut itself (the emulator) returns for this cutout: the one FITS in its zip."""
    zipped = httpx.get(mast.url + ASTROCUT, params=params, timeout=60)
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        (name,) = archive.namelist()
        return archive.read(name)


def test_a_job_started_on_one_replica_is_polled_to_completion_on_the_other(
    deployment: Deployment, mast: FakeMast
) -> None:
    one, two = deployment.replicas
    mast.set_fault(ASTROCUT, delay_s=1.5)  # so that the job is seen running
    params = POSITION | {"size": 14}
    started = one.get("/cutout", params=params | {"wait": 0})
    assert started.status_code == 202, started.text
    seen: list[str] = []

    def note(job: dict[str, object]) -> bool:
        seen.append(str(job["status"]))
        return job["status"] in ("done", "failed")

    done = poll_job_sync(two, started.headers["location"], until=note, timeout_s=60).json()
    assert done["status"] == "done" and done["problem"] is None, done
    assert "running" in seen, seen
    assert done["bytes_received"] > 0
    result = two.get(done["result_url"])
    assert result.status_code == 200 and result.headers["x-cache"] == "HIT"
    assert mast.count(endpoint="tesscut.astrocut") == 1
    # A worker downloaded it; neither replica called TESScut for the cutout.
    assert sum(worker.metric('tess_queue_job_runs_total{function="cutout",outcome="done"}') for worker in
               deployment.workers) >= 1  # fmt: skip
    assert tesscut_calls_by_replicas(deployment) == 0


def test_identical_cold_cutouts_over_both_replicas_make_one_download(deployment: Deployment, mast: FakeMast) -> None:
    mast.set_fault(ASTROCUT, delay_s=1.0)
    params = POSITION | {"size": 9, "wait": 60}
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda n: fetched(deployment.replicas[n % 2], "/cutout", params), range(20)))
    assert {answer.status_code for answer in answers} == {200}, [a.text[:200] for a in answers]
    assert len({answer.content for answer in answers}) == 1
    assert mast.count(endpoint="tesscut.astrocut") == 1, mast.counters()


def test_fifty_identical_cold_movies_over_both_replicas_make_one_download_and_one_render(
    deployment: Deployment, mast: FakeMast
) -> None:
    movie = "/movie?ra=107.27&dec=-70.0&sector=1&size=11&start=1334&end=1334.5&wait=90"
    made = made_everywhere(deployment)
    renders = sum(w.metric('tess_queue_job_runs_total{function="render",outcome="done"}') for w in deployment.workers)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda n: fetched(deployment.replicas[n % 2], movie), range(50)))
    assert {answer.status_code for answer in answers} == {200}, [a.text[:200] for a in answers]
    assert len({answer.content for answer in answers}) == 1 and answers[0].content[:6] == b"GIF89a"
    # One download (by a worker) and one render (a queued job, by a worker), for all 50.
    assert mast.count(endpoint="tesscut.astrocut") == 1, mast.counters()
    assert made_everywhere(deployment) - made == 1
    assert sum(w.metric('tess_queue_job_runs_total{function="render",outcome="done"}') for w in
               deployment.workers) == renders + 1  # fmt: skip


def made_everywhere(deployment: Deployment) -> float:
    """`tess_productions_total` (answers made rather than read from a cache) over both replicas and both workers."""
    texts = [replica.get("/metrics").text for replica in deployment.replicas]
    texts += [httpx.get(worker.metrics, timeout=5).text for worker in deployment.workers]
    return sum(metric(text, "tess_productions_total") for text in texts)


def test_thirty_distinct_cold_cutouts_through_the_workers_stay_within_tesscuts_limits(
    deployment: Deployment, mast: FakeMast
) -> None:
    mast.set_fault(ASTROCUT, delay_s=1.5)

    def cutout(n: int) -> httpx.Response:
        return fetched(deployment.replicas[n % 2], "/cutout", POSITION | {"size": 20 + n, "wait": 110})

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(cutout, range(30)))
    assert [answer.status_code for answer in answers] == [200] * 30, [a.text[:200] for a in answers]
    assert mast.count(endpoint="tesscut.astrocut") == 30
    assert mast.tesscut_in_flight_max() <= 10
    assert mast.tesscut_starts_max_per_s() <= 5
    assert tesscut_calls_by_replicas(deployment) == 0


def test_a_worker_killed_mid_cutout_leaves_the_job_to_the_other(deployment: Deployment, mast: FakeMast) -> None:
    one, two = deployment.replicas
    mast.set_fault(ASTROCUT, delay_s=4.0)
    params = POSITION | {"size": 17}
    started = one.get("/cutout", params=params | {"wait": 0})
    assert started.status_code == 202, started.text

    def running_it() -> Worker | None:
        return next((w for w in deployment.workers if w.metric("tess_queue_jobs_running") >= 1), None)

    wait_until(lambda: running_it() is not None, 20, what="a worker to take the job", interval_s=0.1)
    victim = running_it()
    assert victim is not None
    wait_until(lambda: mast.count(endpoint="tesscut.astrocut") == 1, 10, what="the download to start")
    victim.kill()  # mid-download: the emulator is still holding its answer back
    done = poll_job_sync(two, started.headers["location"], until=lambda j: j["status"] in ("done", "failed"),
                         timeout_s=90).json()  # fmt: skip
    assert done["status"] == "done", done
    assert mast.count(endpoint="tesscut.astrocut") == 2  # the killed attempt and the other worker's
    served = two.get(done["result_url"])
    assert served.status_code == 200
    mast.clear_faults()
    assert served.content == emulator_fits(mast, POSITION | {"x": 17, "y": 17, "units": "px"})


def test_jobs_survive_a_restart_of_the_state_redis(deployment: Deployment, mast: FakeMast) -> None:
    one, two = deployment.replicas
    mast.set_fault(ASTROCUT, delay_s=3.0)
    started = [one.get("/cutout", params=POSITION | {"size": size, "wait": 0}) for size in (61, 62)]
    assert [answer.status_code for answer in started] == [202, 202]
    wait_until(lambda: mast.count(endpoint="tesscut.astrocut") >= 1, 20, what="a download to start")
    deployment.state.stop()
    deployment.state.start()  # the same port and directory: its AOF brings the queue back
    for answer in started:
        done = poll_job_sync(one, answer.headers["location"], until=lambda j: j["status"] in ("done", "failed"),
                             timeout_s=90).json()  # fmt: skip
        assert done["status"] == "done", done
        assert two.get(done["result_url"]).status_code == 200
    # New work goes on without restarting anything.
    assert fetched(two, "/cutout", POSITION | {"size": 63, "wait": 60}).status_code == 200


def test_a_flushed_cache_redis_means_refetching_not_errors(deployment: Deployment, mast: FakeMast) -> None:
    one, two = deployment.replicas
    tces = "/tic/214568914/tces"
    first = fetched(one, tces)
    cutout = fetched(one, "/cutout", POSITION | {"size": 71, "wait": 60})
    asked = mast.count()
    deployment.cache.client().flushall()
    # Replica two never had either, and the shared tier forgot both: made again, not errors.
    again = fetched(two, tces)
    assert again.content == first.content
    assert mast.count() > asked, "replica two served an answer nobody shares any more"
    assert fetched(two, "/cutout", POSITION | {"size": 71, "wait": 60}).content == cutout.content


def test_with_the_state_redis_down_new_work_is_a_503_and_cached_answers_are_served(
    deployment: Deployment, mast: FakeMast
) -> None:
    one, two = deployment.replicas
    cached = POSITION | {"size": 74, "wait": 60}
    fetched(one, "/cutout", cached)
    deployment.state.stop()
    try:
        refused = one.get("/cutout", params=POSITION | {"size": 75})
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["retryable"] is True and "retry-after" in refused.headers
        assert one.get("/cutout", params=cached).status_code == 200
        assert two.get("/cutout", params=cached).status_code == 200  # through the cache Redis and the object store
        ready = one.get("/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
        assert coordination(one)["state"] == "unavailable"
    finally:
        deployment.state.start()
    wait_until(lambda: coordination(one)["ok"], 10, what="/ready to see the state Redis again", interval_s=0.2)
    assert fetched(one, "/cutout", POSITION | {"size": 75, "wait": 60}).status_code == 200
