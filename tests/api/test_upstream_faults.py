"""Upstream quirks the fault matrix (test_fault_matrix.py) does not cover: odd-but-valid bodies, size limits,
and the upstream's own Retry-After."""

import anyio
import pytest

from tests.conftest import WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio

LC_PATH = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve"
TABLE_GLOB = "/api/v0.1/dvdata/tess/*/table/"
TCES_GLOB = "/api/v0.1/dvdata/tess/*/tces/"


async def test_text_json_and_bare_nan_are_accepted_as_exomast_has_sent_them(client, mast):
    mast.set_fault(TABLE_GLOB, content_type="text/json; charset=UTF-8", body="nan")
    response = await client.get(LC_PATH, params={"columns": "TIME,LC_DETREND"})
    assert response.status_code == 200
    detrend = response.json()["columns"]["LC_DETREND"]
    assert None in detrend, "NaN tokens become null"


async def test_empty_body_is_a_502_and_not_retried(client, mast):
    mast.set_fault(TABLE_GLOB, body="empty")
    response = await client.get(LC_PATH)
    assert response.status_code == 502
    assert "malformed JSON" in response.json()["detail"]
    assert mast.count(endpoint="exomast.table") == 1


async def test_oversized_upstream_body_is_refused_and_not_retried(make_client, mast):
    async with make_client(upstream_max_body_mb=1) as client:
        response = await client.get(LC_PATH)
    assert response.status_code == 502
    assert "bytes we accept" in response.json()["detail"]
    assert "retry-after" not in response.headers
    assert mast.count(endpoint="exomast.table") == 1


async def test_an_upstream_retry_after_beyond_the_deadline_is_passed_on_not_waited_for(make_client, mast):
    mast.set_fault(TCES_GLOB, status=503, retry_after_s=120)
    async with make_client(upstream_deadline_s=10) as client:
        failed = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "120"
    assert mast.count(endpoint="exomast.tces") == 1, "waiting 120 s would break the 10 s deadline: no retry"


@pytest.mark.slow
async def test_an_upstream_retry_after_within_the_deadline_is_honoured(make_client, mast):
    mast.set_fault(TCES_GLOB, status=503, retry_after_s=1, times=1)
    async with make_client() as client:
        recovered = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert recovered.status_code == 200
    assert mast.count(endpoint="exomast.tces") == 2


async def test_an_upstream_retry_after_longer_than_a_few_seconds_is_passed_on_at_once(make_client, mast):
    mast.set_fault(TCES_GLOB, status=503, retry_after_s=60)
    async with make_client() as client:  # the default 300 s deadline: a 60 s wait would fit in it
        with anyio.fail_after(20):  # a guard against hanging 60 s, not a speed check
            failed = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert failed.status_code == 503 and failed.headers["retry-after"] == "60"
    assert mast.count(endpoint="exomast.tces") == 1, "the client decides whether to wait a minute, not us"
