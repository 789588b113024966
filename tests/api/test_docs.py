"""Swagger UI and ReDoc are served from the service itself: their pages name no other origin (offline networks).

tests/browser/test_docs_page.py renders both in Chromium and checks the requests they make.
"""

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
    assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", html)
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


async def test_swagger_ui_is_told_to_use_no_validator(client):
    # Swagger UI's default asks validator.swagger.io for a badge whenever the page is not on localhost.
    assert '"validatorUrl": null' in (await client.get("/docs")).text


async def test_the_redoc_script_is_redocs_without_the_redocly_logo_from_its_cdn(client):
    script = (await client.get("/redoc")).text.split('<script src="', 1)[1].split('"', 1)[0]
    response = await client.get(script)
    assert response.status_code == 200 and "javascript" in response.headers["content-type"]
    assert "Redoc" in response.text and "API docs by Redocly" in response.text
    assert "cdn.redoc.ly" not in response.text and "https://cdn." not in response.text
    again = await client.get(script, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
