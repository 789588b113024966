"""The mirror's ``dvdata/tess/{tic}/phaseplot/``: ExoMAST's Bokeh page, with BokehJS from the service itself.

The emulator has no phase plot (nor do we know ExoMAST's bytes): the page is checked against what ExoMAST's page is
recorded to hold (upstream-apis.md 1.2) and against the DV table the emulator serves; its errors against ExoMAST's
answers to the same query on ``info/``, which reads ``tce`` and ``sector`` by the same rules.
"""

from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from tests.bokeh_pages import bokeh_documents, glyph_columns, loaded_urls, models, tags, texts
from tests.clock import FakeClock
from tests.conftest import WASP18_TIC, WEIRD_TIC

pytestmark = pytest.mark.anyio

MIRROR = "/api/v0.1/dvdata/tess"
TABLE_GLOB = "/api/v0.1/dvdata/tess/*/table/"
WASP18_PLOT = f"{MIRROR}/{WASP18_TIC}/phaseplot/?tce=TCE_1&sector=s0001-s0003"
WEIRD_PLOT = f"{MIRROR}/{WEIRD_TIC}/phaseplot/?tce=TCE_1&sector=s0001-s0001"


@pytest.fixture
async def upstream(mast):
    async with httpx.AsyncClient(base_url=mast.url, timeout=30) as client:
        yield client


async def test_the_page_is_exomasts_phase_plot_of_the_dv_table(client, upstream):
    response = await client.get(WASP18_PLOT)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Phased Light Curve</title>" in page
    [document] = bokeh_documents(page)
    assert {"Phase (days)", "Relative Flux (ppm)", "Detrended", "Transit Model"} <= texts(document)
    assert f"TIC {WASP18_TIC} (S0001-S0003) TCE_1" in texts(document)

    rows = (await upstream.get(WASP18_PLOT.replace("/phaseplot/", "/table/"))).json()["data"]
    drawn = [row for row in rows if row["PHASE"] is not None and row["LC_DETREND"] is not None]
    assert 0 < len(drawn) < len(rows), "the comparison must cover cadences without flux"
    points = glyph_columns(document, "Scatter")
    np.testing.assert_allclose(points["x"], [row["PHASE"] for row in drawn], rtol=1e-6)
    np.testing.assert_allclose(points["y"], [row["LC_DETREND"] * 1e6 for row in drawn], rtol=1e-5, atol=1e-3)
    model = glyph_columns(document, "Line")
    assert model["y"].min() == pytest.approx(min(row["MODEL_INIT"] for row in drawn) * 1e6, rel=1e-5)


async def test_every_url_the_page_loads_is_the_services_own(client):
    for path in (WASP18_PLOT, WASP18_PLOT + "&embed"):
        page = (await client.get(path)).text
        urls = loaded_urls(page)
        assert any(url.endswith("/bokeh.min.js") for url in urls), path
        for url in urls:
            parts = urlsplit(url)
            assert (parts.scheme, parts.netloc) == ("", "") and url.startswith("/"), url
            assert (await client.get(url)).status_code == 200, url
        assert "http://" not in page and "https://" not in page


@pytest.mark.parametrize(
    "query",
    ["tce=TCE_1&sector=s0001-s0001", "tce=1&sector=1", "tce=s0001-s0001:TCE_1", "tce=tce_1&sector=S0001-S0001"],
)
async def test_star_id_and_tce_forms_name_one_page(client, mast, query):
    reference = await client.get(WEIRD_PLOT)
    for star_id in ("00214568914", str(WEIRD_TIC)):
        response = await client.get(f"{MIRROR}/{star_id}/phaseplot/", params=query)
        assert response.status_code == 200, star_id
        assert response.headers["x-cache"] == "HIT"
        assert response.headers["etag"] == reference.headers["etag"]
    assert mast.count(endpoint="exomast.table") == 1


async def test_the_page_is_cached_with_an_etag_and_the_same_data_give_the_same_bytes(make_client, mast, tmp_path):
    clock = FakeClock()
    async with make_client(cache_clock=clock, ttl_dv_s=3600) as client:
        first = await client.get(WEIRD_PLOT)
        assert first.headers["x-cache"] == "MISS"
        assert first.headers["cache-control"] == "public, max-age=3600"
        revalidated = await client.get(WEIRD_PLOT, headers={"If-None-Match": first.headers["etag"]})
        assert revalidated.status_code == 304
        clock.advance(3601)  # the DV table is old: the page is made again from a table fetched again
        remade = await client.get(WEIRD_PLOT)
    assert remade.headers["x-cache"] == "MISS"
    assert mast.count(endpoint="exomast.table") == 2
    assert remade.content == first.content
    # Another process (its own cache) makes the same bytes too: the ETag names the data, not the render.
    async with make_client(cache_dir=tmp_path / "other-cache") as other:
        elsewhere = await other.get(WEIRD_PLOT)
    assert elsewhere.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize("flag", ["embed", "embed=", "embed=true"])
async def test_embed_answers_the_same_plot_as_a_fragment(client, flag):
    page = await client.get(WASP18_PLOT)
    fragment = await client.get(f"{WASP18_PLOT}&{flag}")
    assert fragment.status_code == 200
    assert fragment.headers["content-type"] == "text/html; charset=utf-8"
    assert fragment.headers["etag"] != page.headers["etag"]
    assert not tags(fragment.text) & {"html", "head", "body", "title"}
    [document] = bokeh_documents(fragment.text)
    assert f'data-root-id="{models(document, "Figure")[0]["id"]}"' in fragment.text
    assert loaded_urls(fragment.text) == loaded_urls(page.text)
    [whole] = bokeh_documents(page.text)
    np.testing.assert_array_equal(glyph_columns(document, "Scatter")["y"], glyph_columns(whole, "Scatter")["y"])


ERROR_QUERIES = [
    pytest.param("1", "tce=TCE_1&sector=1", id="unknown-tic"),
    pytest.param(str(WEIRD_TIC), "tce=TCE_9&sector=s0001-s0001", id="unknown-tce"),
    pytest.param(str(WEIRD_TIC), "tce=TCE_1&sector=2", id="unknown-sector-range"),
    pytest.param(str(WEIRD_TIC), "tce=TCE_1", id="missing-sector"),
    pytest.param(str(WEIRD_TIC), "sector=1", id="missing-tce"),
    pytest.param(str(WEIRD_TIC), "tce=first&sector=1", id="bad-tce"),
    pytest.param(str(WEIRD_TIC), "tce=1&sector=s1-s1", id="bad-sector"),
    pytest.param(str(WEIRD_TIC), "tce=1&sector=s0003-s0001", id="backward-sectors"),
    pytest.param("WASP-18", "tce=1&sector=1", id="bad-star-id"),
    pytest.param("123456789012", "tce=1&sector=1&embed", id="star-id-too-long"),
]


@pytest.mark.parametrize(("star_id", "query"), ERROR_QUERIES)
async def test_bad_requests_get_exomasts_answers(client, upstream, star_id, query):
    ours = await client.get(f"{MIRROR}/{star_id}/phaseplot/?{query}")
    theirs = await upstream.get(f"{MIRROR}/{star_id}/info/?{query}")
    assert theirs.status_code in (400, 404)
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())
    assert ours.headers["content-type"] == "application/json"
    assert ours.headers["cache-control"] == "no-store"


async def test_an_overlong_embed_value_gets_fastapis_validation_body(client):
    response = await client.get(WEIRD_PLOT, params={"embed": "x" * 1025})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "embed"]


async def test_exomast_failures_stay_problem_documents(client, mast):
    mast.set_fault(TABLE_GLOB, status=503)
    response = await client.get(WEIRD_PLOT)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    mast.clear_faults()
    assert (await client.get(WEIRD_PLOT)).status_code == 200, "the failure was not cached"


async def test_the_page_shares_the_dv_table_with_the_other_routes(client, mast):
    assert (await client.get(f"/tic/{WEIRD_TIC}/tces/s0001-s0001:TCE_1/lightcurve")).status_code == 200
    response = await client.get(WEIRD_PLOT)
    assert response.headers["x-cache"] == "HIT"
    assert mast.count(endpoint="exomast.table") == 1
