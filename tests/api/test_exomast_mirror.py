"""The ExoMAST mirror: unmodified ExoMAST client code runs against the service, shares the clean routes' cache,
and gets ExoMAST's answers, errors included."""

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import requests
from astropy.table import Table

from tests.conftest import WASP18_TIC, WEIRD_TCE, WEIRD_TIC

ROOT = Path(__file__).resolve().parents[2]
MIRROR = "/api/v0.1/dvdata/tess"
TABLE_GLOB = "/api/v0.1/dvdata/tess/*/table/"
LC_PATH = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve"
MIRROR_TABLE = f"{MIRROR}/{WEIRD_TIC}/table/?tce=TCE_1&sector=s0001-s0001"


# --- client code written for https://exo.mast.stsci.edu/api/v0.1/: it only ever gets a base URL -----------------


def json_to_table(fields: list[dict[str, str]], data: list[dict[str, Any]]) -> Table:
    """Column by column, the way the TESScut-ExoMAST tutorial builds its astropy Table."""
    varchar = re.compile(r"varchar\((\d+)\)")
    table = Table()
    for name, datatype in [(field["colname"], field["datatype"]) for field in fields]:
        name = name.strip()
        if "varchar" in datatype:
            datatype = "U" + varchar.search(datatype).group(1)
        if datatype == "real":
            datatype = "float"
        table[name] = np.array([row.get(name, None) for row in data], dtype=datatype)
    return table


def exomast_tutorials(exomast_url: str) -> dict[str, Any]:
    """The TESScut-ExoMAST tutorial (tces -> info -> table -> Table), then beginner_tess_exomast's TCE lookups."""
    weird_tic_id = "00214568914"
    tce_dict = requests.get(f"{exomast_url}dvdata/tess/{weird_tic_id}/tces/").json()
    weird_sector, weird_tce = tce_dict["TCE"][0].split(":")
    metadata = requests.get(f"{exomast_url}dvdata/tess/{weird_tic_id}/info/?tce={weird_tce}&sector={weird_sector}")
    data_dict = requests.get(f"{exomast_url}dvdata/tess/{weird_tic_id}/table/?tce={weird_tce}&sector={weird_sector}")
    weird_lightcurve = json_to_table(data_dict.json()["fields"], data_dict.json()["data"])

    tic, tce = 100100827, "TCE_1"
    sector_info = requests.get(f"{exomast_url}dvdata/tess/{tic}/tces/", params={"tce": tce}).json()
    sectors = [x[:11] for x in sector_info["TCE"] if tce in x]
    tce_info = requests.get(f"{exomast_url}dvdata/tess/{tic}/info/", params={"tce": tce, "sector": sectors[0]}).json()
    return {
        "tces": tce_dict["TCE"],
        "metadata": metadata.json(),
        "lightcurve": weird_lightcurve,
        "wasp18_sectors": sectors,
        "wasp18_info": tce_info,
    }


# --- the service as its own uvicorn process, pointed at the emulator --------------------------------------------


@pytest.fixture
def service_url(running_service: str) -> str:
    """The mirror's base URL on a running service: what ExoMAST clients are given instead of MAST's."""
    return f"{running_service}/api/v0.1/"


def assert_same_tables(ours: Table, theirs: Table) -> None:
    assert ours.colnames == theirs.colnames
    assert len(ours) == len(theirs) > 0
    for name in theirs.colnames:
        mine, upstream = np.asarray(ours[name]), np.asarray(theirs[name])
        assert mine.dtype == upstream.dtype, name
        assert np.array_equal(mine, upstream, equal_nan=upstream.dtype.kind == "f"), name


def test_tutorial_code_runs_unchanged_against_the_service(mast, service_url):
    upstream = exomast_tutorials(mast.exomast_url)
    assert np.isnan(upstream["lightcurve"]["LC_DETREND"]).any(), "the comparison must cover missing values"

    before = mast.counters()["endpoints"]
    cold = exomast_tutorials(service_url)
    fetched = mast.counters()["endpoints"]
    warm = exomast_tutorials(service_url)

    for ours in (cold, warm):
        assert ours["tces"] == upstream["tces"]
        assert ours["metadata"] == upstream["metadata"]
        assert ours["wasp18_sectors"] == upstream["wasp18_sectors"]
        assert ours["wasp18_info"] == upstream["wasp18_info"]
        assert_same_tables(ours["lightcurve"], upstream["lightcurve"])
    # Cold: each distinct ExoMAST answer fetched once; warm: MAST is not asked at all.
    assert fetched["exomast.table"] - before["exomast.table"] == 1
    assert fetched["exomast.info"] - before["exomast.info"] == 2
    assert mast.counters()["endpoints"] == fetched


# --- the rest in-process (conftest's client), against the same emulator -----------------------------------------

anyio = pytest.mark.anyio


@pytest.fixture
async def upstream(mast):
    async with httpx.AsyncClient(base_url=mast.url, timeout=30) as client:
        yield client


@anyio
async def test_tutorials_combined_tce_form_is_accepted(client, upstream):
    for route in ("info", "table"):
        combined = await client.get(f"{MIRROR}/00214568914/{route}/?tce={WEIRD_TCE}")
        split = await upstream.get(f"{MIRROR}/00214568914/{route}/?tce=TCE_1&sector=s0001-s0001")
        assert combined.status_code == split.status_code == 200
        assert combined.json() == split.json()


@pytest.mark.parametrize(
    "query",
    [
        "tce=TCE_1",  # no sector: still ExoMAST's 400
        f"tce={WEIRD_TCE}&sector=s0001-s0001",  # the combined form is only taken in place of a sector
        "tce=s0001-s0001:TCE_1:2",
        "tce=s1-s1:TCE_1",
    ],
)
@anyio
async def test_every_other_tce_form_gets_exomasts_answer(client, upstream, query):
    path = f"{MIRROR}/{WEIRD_TIC}/info/?{query}"
    ours, theirs = await client.get(path), await upstream.get(path)
    assert theirs.status_code == 400
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())
    if query == "tce=TCE_1":
        assert ours.json() == {"detail": "Missing sector in TESS request"}


@anyio
async def test_mirror_after_clean_route_is_a_hit(client, mast):
    assert (await client.get(LC_PATH)).headers["x-cache"] == "MISS"
    table = await client.get(MIRROR_TABLE)
    assert table.status_code == 200
    assert table.headers["x-cache"] == "HIT"
    for path in (f"/tic/{WEIRD_TIC}/tces", f"{MIRROR}/{WEIRD_TIC}/tces/"):
        assert (await client.get(path)).headers["x-cache"] == "HIT"
    assert mast.count(endpoint="exomast.table") == 1
    assert mast.count(endpoint="exomast.tces") == 1


@anyio
async def test_clean_route_after_mirror_is_a_hit(client, mast):
    assert (await client.get(MIRROR_TABLE)).headers["x-cache"] == "MISS"
    assert (await client.get(f"{MIRROR}/{WEIRD_TIC}/info/?tce=1&sector=1")).headers["x-cache"] == "MISS"
    for path in (LC_PATH, f"{LC_PATH}?format=csv", f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}", f"/tic/{WEIRD_TIC}/tces"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["x-cache"] == "HIT", path
    assert mast.count(endpoint="exomast.table") == 1
    assert mast.count(endpoint="exomast.info") == 1
    assert mast.count(endpoint="exomast.tces") == 1


@anyio
async def test_concurrent_mirror_and_clean_requests_share_one_fetch(client, mast):
    mast.set_fault(TABLE_GLOB, delay_s=0.5)
    paths = [MIRROR_TABLE, f"{MIRROR}/00214568914/table?tce={WEIRD_TCE}", LC_PATH, f"{LC_PATH}?format=csv"] * 3
    responses = await asyncio.gather(*(client.get(path) for path in paths))
    assert {r.status_code for r in responses} == {200}
    assert {r.headers["x-cache"] for r in responses} == {"MISS"}, "every one of them waited for ExoMAST"
    assert mast.count(endpoint="exomast.table") == 1


@anyio
async def test_repeated_table_is_served_from_its_own_entry(client, mast, upstream):
    first = await client.get(MIRROR_TABLE)
    second = await client.get(MIRROR_TABLE, headers={"If-None-Match": first.headers["etag"]})
    third = await client.get(MIRROR_TABLE)
    assert second.status_code == 304
    assert third.content == first.content == (await upstream.get(MIRROR_TABLE)).content
    assert mast.count(endpoint="exomast.table") == 2  # the service's one fetch, and ours just now


ERROR_PATHS = [
    pytest.param(f"{MIRROR}/1/tces/", id="unknown-tic-tces"),
    pytest.param(f"{MIRROR}/1/info/?tce=TCE_1&sector=1", id="unknown-tic-info"),
    pytest.param(f"{MIRROR}/1/table/?tce=TCE_1&sector=1", id="unknown-tic-table"),
    pytest.param(f"{MIRROR}/{WEIRD_TIC}/info/?tce=TCE_9&sector=s0001-s0001", id="unknown-tce"),
    pytest.param(f"{MIRROR}/{WEIRD_TIC}/table/?tce=TCE_1&sector=2", id="unknown-sector-range"),
    pytest.param(f"{MIRROR}/{WEIRD_TIC}/table/?tce=TCE_1", id="missing-sector"),
    pytest.param(f"{MIRROR}/{WEIRD_TIC}/info/?tce=TCE_1&sector=", id="empty-sector"),
    pytest.param(f"{MIRROR}/{WEIRD_TIC}/info/?sector=1", id="missing-tce"),
    pytest.param(f"{MIRROR}/{WEIRD_TIC}/info/?tce=first&sector=1", id="bad-tce"),
    pytest.param(f"{MIRROR}/{WEIRD_TIC}/info/?tce=1&sector=s1-s1", id="bad-sector"),
    pytest.param(f"{MIRROR}/{WEIRD_TIC}/info/?tce=1&sector=s0003-s0001", id="backward-sectors"),
    pytest.param(f"{MIRROR}/WASP-18/tces/", id="bad-star-id-tces"),
    pytest.param(f"{MIRROR}/TIC{WEIRD_TIC}/info/?tce=1&sector=1", id="bad-star-id-info"),
    pytest.param(f"{MIRROR}/123456789012/table/?tce=1&sector=1", id="star-id-too-long"),
]


@pytest.mark.parametrize("path", ERROR_PATHS)
@anyio
async def test_errors_are_exomasts(client, upstream, path):
    ours, theirs = await client.get(path), await upstream.get(path)
    assert theirs.status_code in (400, 404)
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())
    assert ours.headers["content-type"] == "application/json"
    assert ours.headers["cache-control"] == "no-store"


@anyio
async def test_overlong_query_values_get_fastapis_validation_body(client):
    response = await client.get(f"{MIRROR}/{WEIRD_TIC}/table/", params={"tce": "1" * 1025, "sector": "1"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"][0]["loc"] == ["query", "tce"]


@anyio
async def test_exomast_failures_stay_problem_documents(client, mast):
    mast.set_fault(TABLE_GLOB, status=503)
    response = await client.get(MIRROR_TABLE)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize("flag", ["&list_tce", "&list_tce=", "&list_tce=true", ""])
@anyio
async def test_list_tce_flag_adds_the_tce_list(client, upstream, flag):
    path = f"{MIRROR}/{WASP18_TIC}/info/?tce=TCE_1&sector=s0001-s0003{flag}"
    ours, theirs = await client.get(path), await upstream.get(path)
    assert ours.status_code == theirs.status_code == 200
    assert ours.json() == theirs.json()
    assert list(ours.json()) == ["DV Primary Header", "DV Data Header"] + (["TCE"] if flag else [])


@anyio
async def test_trailing_slash_is_optional_and_tces_keep_exomasts_order(client, upstream):
    theirs = (await upstream.get(f"{MIRROR}/{WASP18_TIC}/tces/")).json()
    for path in (f"{MIRROR}/{WASP18_TIC}/tces/", f"{MIRROR}/{WASP18_TIC}/tces", f"{MIRROR}/0{WASP18_TIC}/tces"):
        response = await client.get(path, params={"tce": "TCE_1"})  # ignored, as ExoMAST ignores it
        assert response.status_code == 200, path
        assert response.json() == theirs
    assert theirs["TCE"] != sorted(theirs["TCE"])


@pytest.mark.parametrize("query", ["sector=1&sector=zz&tce=1", "sector=zz&sector=1&tce=1", "tce=1&tce=zz&sector=1"])
@pytest.mark.anyio
async def test_repeated_parameters_are_read_like_exomast(client, mast, query):
    path = f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/info/?{query}"
    ours = await client.get(path)
    theirs = httpx.get(mast.url + path)
    assert ours.status_code == theirs.status_code
    if ours.status_code >= 400:
        assert ours.json() == theirs.json()
