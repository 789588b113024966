"""Swagger UI and ReDoc are served from the service itself: their pages name no other origin (offline networks)."""

import re

import pytest

pytestmark = pytest.mark.anyio

ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
async def test_documentation_pages_load_everything_from_this_origin(client, page, script):
    response = await client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "//" not in "".join(re.findall(r"""(?:src|href)=["']([^"']+)""", html))  # no absolute URL
    assert "cdn." not in html and "googleapis" not in html and "http" not in html.replace("http-equiv", "")
    assert "'/openapi.json'" in html or '"/openapi.json"' in html
    assets = re.findall(r"""["'](/static/docs/[^"']+)["']""", html)
    assert any(asset.endswith(script) for asset in assets)
    for asset in assets:
        answer = await client.get(asset)
        assert answer.status_code == 200, asset
        kind = next(value for suffix, value in ASSET_TYPES.items() if asset.endswith(suffix))
        assert kind in answer.headers["content-type"]
        assert len(answer.content) > 1000


async def test_the_document_they_show_is_served(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert "/tic/{tic_id}/diagnosis" in response.json()["paths"]


async def test_an_unknown_asset_is_a_404(client):
    assert (await client.get("/static/docs/nothing.js")).status_code == 404
