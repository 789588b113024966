"""The explorer's pages over HTTP: where they lead, what state they carry, bad input as problems, and that every
asset they name is served by this origin (the browser tests in tests/browser drive them for real)."""

import json
import re

import pytest

pytestmark = pytest.mark.anyio


def page_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)


def page_state(html: str) -> dict:
    (state,) = re.findall(r"""data-state='([^']*)'""", html)
    return json.loads(state)


async def test_the_root_leads_to_the_explorer(client):
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/explore"


async def test_the_start_page_asks_for_a_tic_or_a_position(client):
    response = await client.get("/explore")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    for field in ('name="tic"', 'name="ra"', 'name="dec"'):
        assert field in html
    assert 'href="/explore/214568914"' in html
    assert "bokeh" not in html  # no plot to draw: no BokehJS to load


async def test_a_tic_from_the_form_goes_to_its_page_with_the_window(client):
    response = await client.get("/explore?tic=00214568914&start=1334&end=1335", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/explore/214568914?start=1334.0&end=1335.0"


async def test_the_tic_page_carries_the_state_of_its_url(client):
    response = await client.get("/explore/00214568914?tce=s0001-s0001:TCE_1&start=1334&end=1335")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    html = response.text
    assert page_state(html) == {
        "tic": 214568914, "ra": None, "dec": None, "tce": "s0001-s0001:TCE_1", "sector": None,
        "start": 1334.0, "end": 1335.0,
    }  # fmt: skip
    for element in ('id="lightcurve"', 'id="events"', 'id="movie"', 'id="diagnosis"', 'id="plots"'):
        assert element in html
    assert "<title>TIC 214568914 · TESS explorer</title>" in html


async def test_a_position_page_explores_the_ffi_light_curve(client):
    response = await client.get("/explore?ra=340.8004&dec=-36.3439&sector=1")
    assert response.status_code == 200
    assert page_state(response.text) == {
        "tic": None, "ra": 340.8004, "dec": -36.3439, "tce": None, "sector": 1, "start": None, "end": None,
    }  # fmt: skip


async def test_everything_a_page_loads_comes_from_this_origin(client):
    html = (await client.get("/explore/214568914")).text
    urls = page_urls(html)
    assert "//" not in "".join(urls) and "http" not in html.replace("http-equiv", "")
    scripts = [url for url in urls if url.endswith(".js")]
    assert any("/bokeh.min.js" in url for url in scripts) and any("bokeh-gl" in url for url in scripts)
    assert scripts[-1] == "/static/explorer/explorer.js"
    for url in urls:
        if url.startswith("data:") or url.startswith("/explore") or url == "/docs":
            continue
        response = await client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 500, url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/explore/abc", "tic_id"),
        ("/explore/214568914?start=1335&end=1334", "must be before"),
        ("/explore/214568914?start=1335", "both start and end"),
        ("/explore/214568914?tce=TCE_one", "tce"),
        ("/explore/214568914?sector=0", "sector"),
        ("/explore/214568914?start=nan&end=1", "start"),
        ("/explore?ra=10", "both ra and dec"),
        ("/explore?ra=400&dec=1", "ra"),
        ("/explore?ra=10&dec=-91", "dec"),
        ("/explore?tic=12ab", "tic"),
    ],
)
async def test_bad_page_urls_are_problems(client, url, says):
    response = await client.get(url, follow_redirects=False)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"]
