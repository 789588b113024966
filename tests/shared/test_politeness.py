"""TESScut's limits held across replicas: two service processes share one state Redis, and the emulator counts.

Alone, each process keeps 10 in flight and 5 starts per second; together, without the shared gate, they would reach
twice that. The emulator records every TESScut request's arrival, so the test reads MAST's side of the limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fake_mast import FakeMast
from tests.redis_server import RedisServer, redis_server
from tests.service_process import free_port, running, service_env, uvicorn_command

pytestmark = [pytest.mark.process, pytest.mark.slow]

ASTROCUT = "/tesscut/api/v0.1/astrocut"


@pytest.fixture(scope="module")
def replicas(
    mast: FakeMast, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, httpx.Client, RedisServer]]:
    root = tmp_path_factory.mktemp("politeness")
    with redis_server(root) as state:
        ports = free_port(), free_port()
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        envs = [service_env(mast, root / f"cache-{n}", TESS_SERVICE_STATE_REDIS_URL=state.url) for n in (1, 2)]
        with (
            running(uvicorn_command(ports[0]), envs[0], bases[0]),
            running(uvicorn_command(ports[1]), envs[1], bases[1]),
            httpx.Client(base_url=bases[0], timeout=120) as one,
            httpx.Client(base_url=bases[1], timeout=120) as two,
        ):
            yield one, two, state


def test_thirty_cold_cutouts_over_two_replicas_stay_within_tesscuts_limits(
    replicas: tuple[httpx.Client, httpx.Client, RedisServer], mast: FakeMast
) -> None:
    mast.set_fault(ASTROCUT, delay_s=1.5)  # long enough that 10/s from two processes would pile up past 10

    def cutout(n: int) -> httpx.Response:
        params = {"ra": 107.27, "dec": -70.0, "size": n + 1, "sector": 1, "wait": 120}
        return replicas[n % 2].get("/cutout", params=params)

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(cutout, range(30)))
    assert [answer.status_code for answer in answers] == [200] * 30, [
        a.text[:200] for a in answers if a.status_code != 200
    ]
    assert mast.count(endpoint="tesscut.astrocut") == 30
    assert mast.tesscut_in_flight_max() <= 10
    assert 4 <= mast.tesscut_starts_max_per_s() <= 5


def test_with_the_state_redis_down_new_tesscut_work_is_a_503_and_cached_cutouts_are_served(
    replicas: tuple[httpx.Client, httpx.Client, RedisServer], mast: FakeMast
) -> None:
    one, two, state = replicas
    cached = {"ra": 107.27, "dec": -70.0, "size": 2, "sector": 1}  # made on replica two by the test above
    new = {"ra": 107.27, "dec": -70.0, "size": 40, "sector": 1}
    state.stop()
    try:
        refused = one.get("/cutout", params=new)
        assert refused.status_code == 503, refused.text
        problem = refused.json()
        assert refused.headers["content-type"] == "application/problem+json" and problem["retryable"] is True
        assert "state Redis" in problem["detail"] and "retry-after" in refused.headers
        assert two.get("/cutout", params=cached).status_code == 200
        assert mast.count(endpoint="tesscut.astrocut") == 0
    finally:
        state.start()
    # Back without a restart of the service.
    assert one.get("/cutout", params=new | {"wait": 120}).status_code == 200
    assert mast.count(endpoint="tesscut.astrocut") == 1
