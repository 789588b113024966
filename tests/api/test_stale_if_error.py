"""Stale-if-error: an expired entry is served, marked, when MAST fails, and never rewritten; fresh data follows."""

import sqlite3
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

from tests.clock import FakeClock
from tests.conftest import WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio

TCES_GLOB = "/api/v0.1/dvdata/tess/*/tces/"
TABLE_GLOB = "/api/v0.1/dvdata/tess/*/table/"
SECTOR_GLOB = "/tesscut/api/v0.1/sector*"
LC_PATH = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve"
# Fast failures: no retries, and a breaker that stays closed unless a test wants it open.
FAST = {"upstream_max_attempts": 1, "upstream_backoff_s": 0.01, "breaker_failure_threshold": 100}


def cache_entries(cache_dir: Path) -> dict[str, float]:
    """Return every cache entry's key and creation time, read straight from the cache's database."""
    with sqlite3.connect(cache_dir / "cache.db") as db:
        rows = db.execute("SELECT key, tag FROM Cache").fetchall()
    return {key: orjson.loads(tag)["created_at"] for key, tag in rows}


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("tess_cache_lookups_total", {"result": result}) or 0.0


def assert_stale(response, words: str) -> None:
    assert response.status_code == 200
    assert response.headers["x-cache"] == "STALE"
    assert "110" in response.headers["warning"] and "Response is Stale" in response.headers["warning"]
    assert "111" in response.headers["warning"]
    assert response.headers["cache-control"] == "public, max-age=0, must-revalidate"
    reason = response.headers["x-stale-reason"]
    assert reason.isascii() and words in reason, reason


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        pytest.param({"status": 503}, "ExoMAST failed (503", id="503"),
        pytest.param({"status": 504}, "ExoMAST failed (504", id="504-nginx"),
        pytest.param({"body": "malformed"}, "ExoMAST failed (502", id="malformed-502"),
    ],
)
async def test_expired_tce_list_is_served_stale_while_exomast_fails(make_client, make_settings, mast, fault, words):
    cache_dir = make_settings().cache_dir
    clock = FakeClock()
    async with make_client(ttl_tce_list_s=1, cache_clock=clock, **FAST) as client:
        first = await client.get(f"/tic/{WEIRD_TIC}/tces")
        assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces")).headers["x-cache"] == "HIT"
        clock.advance(1.05)  # let both entries (the response and the TCE list under it) expire
        before, stale_before = cache_entries(cache_dir), lookups("stale")

        mast.set_fault(TCES_GLOB, **fault)
        for _ in range(2):
            stale = await client.get(f"/tic/{WEIRD_TIC}/tces")
            assert_stale(stale, words)
            assert stale.content == first.content and stale.headers["etag"] == first.headers["etag"]
        assert mast.count(endpoint="exomast.tces") == 3, "each stale answer tried ExoMAST first"
        assert cache_entries(cache_dir) == before, "nothing was rewritten or added while serving stale"
        assert lookups("stale") > stale_before

        mast.clear_faults()
        recovered = await client.get(f"/tic/{WEIRD_TIC}/tces")
        assert recovered.status_code == 200 and recovered.headers["x-cache"] == "MISS"
        assert "warning" not in recovered.headers and "x-stale-reason" not in recovered.headers
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces")).headers["x-cache"] == "HIT"
        assert mast.count(endpoint="exomast.tces") == 4


async def test_answer_made_from_stale_data_is_stale_and_not_cached(make_client, make_settings, mast):
    cache_dir = make_settings().cache_dir
    async with make_client(ttl_dv_s=0, **FAST) as client:
        whole = await client.get(LC_PATH, params={"columns": "TIME,LC_DETREND"})
        assert whole.status_code == 200
        before = cache_entries(cache_dir)

        # A window never asked before: its answer is new, made from the expired DV table.
        window = {"columns": "TIME,LC_DETREND", "start": 1334.4, "end": 1334.5}
        mast.set_fault(TABLE_GLOB, status=503)
        made = await client.get(LC_PATH, params=window)
        assert_stale(made, "ExoMAST failed (503")
        rows = made.json()["columns"]["TIME"]
        assert rows and all(1334.4 <= t <= 1334.5 for t in rows)
        assert cache_entries(cache_dir) == before, "an answer made from stale data is not cached"

        mast.clear_faults()
        fresh = await client.get(LC_PATH, params=window)
        assert fresh.status_code == 200 and fresh.headers["x-cache"] == "MISS"
        assert "x-stale-reason" not in fresh.headers
        assert fresh.content == made.content
        assert mast.count(endpoint="exomast.table") == 3


async def test_value_served_stale_marks_answers_built_outside_the_response_cache(make_client, mast):
    # The TESScut mirror's sector list is built from the cached sector lookup, not from a cached response body.
    params = {"ra": 340.8004, "dec": -36.3439}
    async with make_client(ttl_sectors_s=0, **FAST) as client:
        first = await client.get("/tesscut/api/v0.1/sector", params=params)
        assert first.status_code == 200 and "x-cache" not in first.headers
        mast.set_fault(SECTOR_GLOB, status=503)
        stale = await client.get("/tesscut/api/v0.1/sector", params=params)
        assert stale.status_code == 200 and stale.json() == first.json()
        assert stale.headers["x-cache"] == "STALE"
        assert "TESScut failed (503" in stale.headers["x-stale-reason"]


async def test_breaker_open_still_serves_stale(make_client, mast):
    async with make_client(ttl_tce_list_s=0, upstream_max_attempts=1, breaker_failure_threshold=1) as client:
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces")).status_code == 200
        mast.set_fault(TCES_GLOB, status=503)
        reasons = [(await client.get(f"/tic/{WEIRD_TIC}/tces")).headers.get("x-stale-reason") for _ in range(3)]
        assert all(reasons), "every answer was stale, none an error"
        # The first call filled the cache; the first stale answer's one attempt failed and opened the breaker
        # (threshold 1, no retries); the next two were answered stale without asking ExoMAST.
        assert mast.count(endpoint="exomast.tces") == 2, "the open breaker spared ExoMAST"


async def test_stale_if_error_can_be_disabled(make_client, mast):
    async with make_client(ttl_tce_list_s=0, stale_if_error_s=0, **FAST) as client:
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces")).status_code == 200
        mast.set_fault(TCES_GLOB, status=503)
        failed = await client.get(f"/tic/{WEIRD_TIC}/tces")
        assert failed.status_code == 503
        assert failed.headers["content-type"] == "application/problem+json"


async def test_not_found_is_an_answer_not_an_error_to_hide(make_client, mast):
    async with make_client(ttl_tce_list_s=0, **FAST) as client:
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces")).status_code == 200
        mast.set_fault(TCES_GLOB, status=404)
        gone = await client.get(f"/tic/{WEIRD_TIC}/tces")
        assert gone.status_code == 404
        assert "x-stale-reason" not in gone.headers
