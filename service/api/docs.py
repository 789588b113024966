"""Swagger UI (`/docs`) and ReDoc (`/redoc`) served from the service itself, so they work without internet.

FastAPI's own pages load their JavaScript, CSS and favicon from a CDN (and ReDoc its fonts from Google): on a
closed observatory or cluster network `/docs` is a blank page. The assets come from the `fastapi-offline` package
(Swagger UI's and ReDoc's release bundles, kept current by its maintainer), served by `service.api.assets`; nothing is
copied into this repository, and the pages request nothing from another origin (tests/browser checks it in Chromium).
"""

from __future__ import annotations

import hashlib
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse, Response

from service.api.assets import DOCS_ASSETS_PATH as ASSETS_PATH
from service.infra.http_cache import etag_matches

router = APIRouter(include_in_schema=False)

# Swagger UI asks validator.swagger.io for a badge when the page is not on localhost (in the layouts that show one);
# null switches the validator off whatever the layout.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

# ReDoc 2 draws "API docs by Redocly" in its menu with a logo fetched from Redocly's CDN, and has no option to stop
# it (Redocly/redoc#2141): the one request the docs made to another origin, a failed DNS lookup and a console error
# on a closed network. The bundle is served with that URL emptied: the <img> fails at once without a request and
# ReDoc's own error handler removes it; the attribution's text link stays.
REDOC_BUNDLE_PATH = "/redoc/redoc.standalone.js"
REDOCLY_LOGO_URL = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def offline_redoc_bundle() -> bytes:
    """Return fastapi-offline's ReDoc bundle with the Redocly logo's CDN URL removed."""
    return (files("fastapi_offline") / "static" / "redoc.standalone.js").read_bytes().replace(REDOCLY_LOGO_URL, b"")


# Read once at import (1 MB), never on the event loop.
REDOC_BUNDLE = offline_redoc_bundle()
REDOC_BUNDLE_ETAG = f'"{hashlib.sha256(REDOC_BUNDLE).hexdigest()[:32]}"'


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Return Swagger UI on the service's OpenAPI document, with its assets from this origin."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="TESS time-series service · Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    """Return Swagger UI's OAuth2 redirect page (part of Swagger UI; the service itself needs no login)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    """Return ReDoc on the service's OpenAPI document, with its script from this origin and no web fonts."""
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="TESS time-series service · ReDoc",
        redoc_js_url=REDOC_BUNDLE_PATH,
        redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )


@router.get(REDOC_BUNDLE_PATH)
async def redoc_bundle(request: Request) -> Response:
    """Return ReDoc's script without its one third-party request (see `REDOCLY_LOGO_URL`); 304 when current."""
    headers = {"ETag": REDOC_BUNDLE_ETAG, "Cache-Control": "public, max-age=86400"}
    if etag_matches(request.headers.get("if-none-match"), REDOC_BUNDLE_ETAG):
        return Response(status_code=304, headers=headers)
    return Response(REDOC_BUNDLE, media_type="text/javascript", headers=headers)
