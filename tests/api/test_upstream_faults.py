"""Upstream failures become the right 5xx problem, are never cached, and clear with the fault."""

import pytest

from tests.conftest import WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio

LC_PATH = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve"
TABLE_GLOB = "/api/v0.1/dvdata/tess/*/table/"
TCES_GLOB = "/api/v0.1/dvdata/tess/*/tces/"

FAULTS = [
    pytest.param({"status": 500}, 502, "HTTP 500", id="500"),
    pytest.param({"status": 503}, 503, "HTTP 503: 503 Service Temporarily Unavailable", id="503"),
    pytest.param({"status": 504}, 504, "gateway timed out", id="504-nginx"),
    pytest.param({"body": "truncate"}, 502, "dropped the connection", id="truncated-body"),
    pytest.param({"body": "drop"}, 502, "dropped the connection", id="dropped"),
    pytest.param({"body": "malformed"}, 502, "malformed JSON", id="malformed-json"),
    pytest.param({"content_type": "text/html"}, 502, "content type 'text/html'", id="wrong-content-type"),
    pytest.param({"body": "empty"}, 502, "malformed JSON", id="empty-body"),
]


@pytest.mark.parametrize(("fault", "status", "words"), FAULTS)
async def test_table_fault_gives_problem_and_nothing_is_cached(client, mast, fault, status, words):
    mast.set_fault(TABLE_GLOB, **fault)
    failed = await client.get(LC_PATH)
    assert failed.status_code == status
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.headers["cache-control"] == "no-store"
    problem = failed.json()
    assert problem["upstream"] == "ExoMAST"
    assert problem["retryable"] is True
    assert words in problem["detail"]
    assert "<" not in problem["detail"], "gateway HTML pages are summarised by their title"
    if status in (503, 504):
        assert int(failed.headers["retry-after"]) > 0

    mast.clear_faults()
    recovered = await client.get(LC_PATH)
    assert recovered.status_code == 200
    assert recovered.headers["x-cache"] == "MISS"
    assert mast.count(endpoint="exomast.table") == 2


@pytest.mark.parametrize(("fault", "status", "words"), FAULTS[:3])
async def test_tce_list_fault_gives_problem_and_nothing_is_cached(client, mast, fault, status, words):
    mast.set_fault(TCES_GLOB, **fault)
    failed = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert failed.status_code == status
    assert words in failed.json()["detail"]
    mast.clear_faults()
    recovered = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert recovered.status_code == 200
    assert recovered.headers["x-cache"] == "MISS"


async def test_text_json_and_bare_nan_are_accepted_as_exomast_has_sent_them(client, mast):
    mast.set_fault(TABLE_GLOB, content_type="text/json; charset=UTF-8", body="nan")
    response = await client.get(LC_PATH, params={"columns": "TIME,LC_DETREND"})
    assert response.status_code == 200
    detrend = response.json()["columns"]["LC_DETREND"]
    assert None in detrend, "NaN tokens become null"


async def test_slow_upstream_is_a_504_not_a_hang(make_client, mast):
    mast.set_fault(TCES_GLOB, delay_s=2.0)
    async with make_client(upstream_read_timeout_s=0.3) as client:
        response = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert response.status_code == 504
    assert "did not answer in time" in response.json()["detail"]
    assert response.headers["retry-after"] == "5"


async def test_unreachable_upstream_is_a_503(make_client, unused_tcp_port):
    async with make_client(exomast_url=f"http://127.0.0.1:{unused_tcp_port}/api/v0.1/") as client:
        response = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert response.status_code == 503
    assert "could not be reached" in response.json()["detail"]
    assert response.headers["retry-after"] == "5"


async def test_oversized_upstream_body_is_refused(make_client, mast):
    async with make_client(upstream_max_body_mb=1) as client:
        response = await client.get(LC_PATH)
    assert response.status_code == 502
    assert "bytes we accept" in response.json()["detail"]


async def test_upstream_503_passes_its_retry_after_on(client, mast):
    mast.set_fault(TCES_GLOB, status=503, times=1)
    failed = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert failed.status_code == 503
    assert failed.headers["retry-after"].isdigit()
    ok = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert ok.status_code == 200
