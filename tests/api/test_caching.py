"""The disk cache, conditional requests and single-flight, measured at the emulator's counters."""

import asyncio

import pytest

from tests.conftest import WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio

TABLE_PATH = f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/table/"
LC_PATH = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve"


async def test_second_identical_request_is_a_hit_and_mast_is_not_asked(client, mast):
    first = await client.get(LC_PATH)
    calls = mast.counters()["endpoints"]
    second = await client.get(LC_PATH)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert mast.counters()["endpoints"] == calls
    assert calls["exomast.table"] == 1


async def test_padded_and_plain_tic_share_one_cache_entry(client, mast):
    plain = await client.get(f"/tic/{WEIRD_TIC}/tces")
    padded = await client.get("/tic/00214568914/tces")
    assert plain.headers["x-cache"] == "MISS"
    assert padded.headers["x-cache"] == "HIT"
    assert mast.count(endpoint="exomast.tces") == 1


async def test_other_formats_reuse_the_cached_table(client, mast):
    await client.get(LC_PATH)
    csv_response = await client.get(LC_PATH, params={"format": "csv"})
    fits_response = await client.get(LC_PATH, params={"format": "fits", "start": 1334})
    # X-Cache: HIT means "answered without asking MAST": the CSV is made from the cached table alone, the FITS
    # file also needs the DV headers, which nothing had fetched yet.
    assert csv_response.headers["x-cache"] == "HIT"
    assert fits_response.headers["x-cache"] == "MISS"
    assert mast.count(endpoint="exomast.table") == 1
    assert mast.count(endpoint="exomast.info") == 1


async def test_if_none_match_gets_304_with_the_same_validators(client):
    first = await client.get(LC_PATH, params={"columns": "TIME"})
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = await client.get(LC_PATH, params={"columns": "TIME"}, headers={"If-None-Match": f'"other", {etag}'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    stale = await client.get(LC_PATH, params={"columns": "TIME"}, headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


async def test_cache_control_follows_the_kind_of_data(make_client):
    async with make_client(ttl_tce_list_s=600, ttl_dv_s=86_400) as client:
        tces = await client.get(f"/tic/{WEIRD_TIC}/tces")
        curve = await client.get(LC_PATH, params={"columns": "TIME"})
    assert tces.headers["cache-control"] in ("public, max-age=600", "public, max-age=599")
    assert curve.headers["cache-control"] in ("public, max-age=86400", "public, max-age=86399")


async def test_expired_entries_are_fetched_again(make_client, mast):
    async with make_client(ttl_tce_list_s=0) as client:
        await client.get(f"/tic/{WEIRD_TIC}/tces")
        again = await client.get(f"/tic/{WEIRD_TIC}/tces")
    assert again.headers["x-cache"] == "MISS"
    assert mast.count(endpoint="exomast.tces") == 2


async def test_cache_survives_a_restart_on_the_same_directory(make_client, mast):
    async with make_client() as client:
        first = await client.get(LC_PATH)
    async with make_client() as client:
        second = await client.get(LC_PATH)
    assert second.headers["x-cache"] == "HIT"
    assert second.content == first.content
    assert mast.count(endpoint="exomast.table") == 1


async def test_twenty_concurrent_cold_requests_make_one_upstream_call(client, mast):
    # Slow the table down so all twenty requests are in flight together.
    mast.set_fault(TABLE_PATH, delay_s=0.5)
    responses = await asyncio.gather(*(client.get(LC_PATH) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert mast.count(endpoint="exomast.table") == 1
    assert mast.count(endpoint="exomast.tces") == 1


@pytest.mark.slow
async def test_concurrent_different_formats_share_one_table_fetch(client, mast):
    mast.set_fault(TABLE_PATH, delay_s=0.5)
    formats = ["json", "csv", "fits"] * 3
    responses = await asyncio.gather(*(client.get(LC_PATH, params={"format": f}) for f in formats))
    assert {r.status_code for r in responses} == {200}
    assert mast.count(endpoint="exomast.table") == 1


async def test_head_answers_like_get_without_a_body(client, mast):
    head = await client.head(LC_PATH, params={"columns": "TIME"})
    get = await client.get(LC_PATH, params={"columns": "TIME"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]
    assert (head.headers["x-cache"], get.headers["x-cache"]) == ("MISS", "HIT")
