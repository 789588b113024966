"""Circuit breakers and readiness through HTTP: a failing upstream is refused at once, probed, and closed again.

The breakers run on a clock the tests move by hand, so no step depends on how fast a loaded machine gets to it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.infra.metrics import BREAKER_REJECTIONS
from service.main import create_app
from tests.clock import FakeClock
from tests.conftest import WASP18_TIC, WEIRD_TIC
from tests.polling import wait_until_async

pytestmark = pytest.mark.anyio

TCES_GLOB = "/api/v0.1/dvdata/tess/*/tces/"
NO_DV_TIC = 206462606  # in the TIC catalog, no DV products
THRESHOLD = 3
# One attempt per request, so each failing request is one failure; a reset long enough for the checks in between.
BREAKER = {"upstream_max_attempts": 1, "tesscut_max_attempts": 1, "breaker_failure_threshold": THRESHOLD}
RESET_S = 30.0


@pytest.fixture
def clock() -> FakeClock:
    """The breakers' clock (a monotonic one: where it starts does not matter), moved by hand."""
    return FakeClock(start=1000.0)


def rejections(upstream: str) -> float:
    return BREAKER_REJECTIONS.labels(upstream)._value.get()


async def open_exomast_breaker(client, mast) -> None:
    mast.set_fault(TCES_GLOB, status=503)
    for _ in range(THRESHOLD):
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces")).json()["type"].endswith("upstream-unavailable")
    assert mast.count(endpoint="exomast.tces") == THRESHOLD


async def test_an_open_breaker_answers_503_at_once_then_a_probe_closes_it(make_client, mast, clock):
    async with make_client(breaker_clock=clock, **BREAKER, breaker_reset_s=RESET_S) as client:
        await open_exomast_breaker(client, mast)
        before = rejections("ExoMAST")
        clock.now += RESET_S - 1

        refused = await client.get(f"/tic/{WASP18_TIC}/tces")
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"] == "urn:tess-service:problem:upstream-circuit-open"
        assert problem["upstream"] == "ExoMAST" and problem["breaker"] == "open"
        assert "circuit breaker open" in problem["detail"] and "try ExoMAST again in 1 s" in problem["detail"]
        assert refused.headers["retry-after"] == "1" == str(problem["retry_after_s"])
        assert mast.count(endpoint="exomast.tces") == THRESHOLD, "refused without asking ExoMAST"
        assert rejections("ExoMAST") - before == 1

        degraded = await client.get("/ready")
        assert degraded.status_code == 200, "cached answers are still served: keep sending traffic"
        assert degraded.json()["status"] == "degraded" and "retry-after" not in degraded.headers
        checks = {check["name"]: check for check in degraded.json()["checks"]}
        assert checks["ExoMAST"] == {"name": "ExoMAST", "ok": False, "state": "open", "detail": None,
                                     "retry_after_s": 1}  # fmt: skip
        assert checks["cache"]["ok"] and checks["TESScut"]["state"] == "closed"

        clock.now += 1  # the reset period is over: the next request is the probe
        due = (await client.get("/ready")).json()
        assert due["status"] == "ready", "a probe is due: nothing refused now"
        assert {check["name"]: check["state"] for check in due["checks"]}["ExoMAST"] == "half-open"
        mast.clear_faults()
        probe = await client.get(f"/tic/{WASP18_TIC}/tces")
        assert probe.status_code == 200
        assert mast.count(endpoint="exomast.tces") == THRESHOLD + 1
        after = await client.get(f"/tic/{WEIRD_TIC}/tces")
        assert after.status_code == 200 and after.headers["x-cache"] == "MISS", "closed: calls go through"
        ready = (await client.get("/ready")).json()
        assert [check["state"] for check in ready["checks"]] == ["writable", "closed", "closed", "closed", "closed"]


async def test_a_failed_probe_opens_the_breaker_again(make_client, mast, clock):
    async with make_client(breaker_clock=clock, **BREAKER, breaker_reset_s=RESET_S) as client:
        await open_exomast_breaker(client, mast)
        clock.now += RESET_S
        probe = await client.get(f"/tic/{WEIRD_TIC}/tces")
        assert probe.json()["type"].endswith("upstream-unavailable"), "the probe reached ExoMAST, which failed"
        assert mast.count(endpoint="exomast.tces") == THRESHOLD + 1
        again = await client.get(f"/tic/{WEIRD_TIC}/tces")
        assert again.json()["breaker"] == "open" and again.headers["retry-after"] == str(int(RESET_S))
        assert mast.count(endpoint="exomast.tces") == THRESHOLD + 1


async def test_a_tesscut_probe_answered_500_opens_the_breaker_again(make_client, mast, clock):
    # astroquery turns TESScut's 500 into InvalidQueryError; the breaker must still see a 500, not an answer.
    sectors = {"ra": 107.27, "dec": -70.0}
    async with make_client(breaker_clock=clock, **BREAKER, breaker_reset_s=RESET_S) as client:
        mast.set_fault("/tesscut/api/v0.1/sector*", status=500)
        for _ in range(THRESHOLD):
            assert (await client.get("/sectors", params=sectors)).status_code == 502
        clock.now += RESET_S
        assert (await client.get("/sectors", params=sectors)).status_code == 502, "the probe, answered 500"
        assert mast.count(endpoint="tesscut.sector") == THRESHOLD + 1
        refused = await client.get("/sectors", params=sectors)
        assert refused.status_code == 503 and refused.json()["breaker"] == "open"
        assert mast.count(endpoint="tesscut.sector") == THRESHOLD + 1


@pytest.mark.slow
async def test_half_open_lets_one_probe_through_and_refuses_the_rest(make_client, mast, clock):
    async with make_client(breaker_clock=clock, **BREAKER, breaker_reset_s=RESET_S) as client:
        await open_exomast_breaker(client, mast)
        clock.now += RESET_S
        # The probe succeeds, slowly: long enough for one more request to be refused meanwhile. Only the probe is
        # slowed: the request after it has nothing to wait for.
        mast.clear_faults()
        mast.set_fault(TCES_GLOB, delay_s=2.0, times=1)
        probe = asyncio.create_task(client.get(f"/tic/{WEIRD_TIC}/tces"))
        await wait_until_async(
            lambda: mast.count(endpoint="exomast.tces") > THRESHOLD, 30, what="the probe to reach ExoMAST"
        )
        meanwhile = await client.get(f"/tic/{WASP18_TIC}/tces")  # another TIC: no single-flight sharing
        assert meanwhile.status_code == 503 and meanwhile.json()["breaker"] == "half-open"
        # ExoMAST's attempts have taken milliseconds: the probe should be back within a second.
        assert meanwhile.headers["retry-after"] == "1"
        assert (await probe).status_code == 200
        assert mast.count(endpoint="exomast.tces") == THRESHOLD + 1
        assert (await client.get(f"/tic/{WASP18_TIC}/tces")).status_code == 200


async def test_not_found_does_not_count_towards_the_breaker(make_client, mast, clock):
    async with make_client(breaker_clock=clock, **BREAKER) as client:
        for tic in range(1, 2 * THRESHOLD):
            assert (await client.get(f"/tic/{tic}/tces")).status_code == 404
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces")).status_code == 200


@pytest.mark.parametrize(
    ("upstream", "glob", "path", "params"),
    [
        ("MAST TIC catalog", "/api/v0/invoke*", f"/tic/{NO_DV_TIC}/sectors", {}),
        ("TESScut", "/tesscut/api/v0.1/sector*", "/sectors", {"ra": 107.27, "dec": -70.0}),
    ],
)
async def test_each_upstream_has_its_own_breaker(make_client, mast, clock, upstream, glob, path, params):
    async with make_client(breaker_clock=clock, **BREAKER) as client:
        mast.set_fault(glob, status=504)
        for _ in range(THRESHOLD):
            assert (await client.get(path, params=params)).status_code == 504
        refused = await client.get(path, params=params)
        assert refused.status_code == 503
        assert refused.json()["upstream"] == upstream and refused.json()["breaker"] == "open"
        assert refused.headers["retry-after"] == "30", "the default reset period, on a clock that stood still"
        # ExoMAST's breaker is another one: still closed.
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces")).status_code == 200
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        states = {check["name"]: check["state"] for check in ready.json()["checks"]}
        assert states == {"cache": "writable", "ExoMAST": "closed", "MAST TIC catalog": "closed",
                          "TESScut": "closed", "SkyBoT": "closed", upstream: "open"}  # fmt: skip


async def test_ready_when_the_cache_is_writable_and_no_breaker_is_open(client):
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "ready"
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [
        ("cache", True), ("ExoMAST", True), ("MAST TIC catalog", True), ("TESScut", True), ("SkyBoT", True),
    ]  # fmt: skip


async def test_not_ready_when_the_cache_cannot_be_written(make_client, mast, clock, tmp_path: Path):
    async with make_client(breaker_clock=clock) as client:
        assert (await client.get("/ready")).status_code == 200
        # Break the cache's database under the running service, as a failing disk would.
        for database in (tmp_path / "cache").glob("cache.db*"):
            database.write_bytes(b"this is not an SQLite database" * 200)
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        problem = response.json()
        assert problem["type"] == "urn:tess-service:problem:not-ready"
        assert problem["detail"].startswith("Not ready: the cache fails (")
        cache = next(check for check in problem["checks"] if check["name"] == "cache")
        assert cache["ok"] is False and cache["state"] == "failing" and cache["detail"]
        assert (await client.get("/health")).status_code == 200, "liveness does not touch the disk"
    assert mast.count() == 0, "readiness never calls MAST"


async def test_ready_does_not_wait_for_a_busy_io_pool(make_settings):
    app = create_app(make_settings(io_threads=1))
    async with LifespanManager(app) as manager:
        io = app.state.services.limiters.io
        hog = object()
        await io.acquire_on_behalf_of(hog)  # every I/O thread busy, as under heavy cache traffic
        try:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
                with anyio.fail_after(30):  # a guard against hanging, not a speed check
                    response = await client.get("/ready")
        finally:
            io.release_on_behalf_of(hog)
    assert response.status_code == 200 and response.json()["status"] == "ready"
