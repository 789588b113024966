"""Swagger UI (`/docs`) and ReDoc (`/redoc`) served from the service itself, so they work without internet.

FastAPI's own pages load their JavaScript, CSS and favicon from a CDN (and ReDoc its fonts from Google): on a
closed observatory or cluster network `/docs` is a blank page. The assets come from the `fastapi-offline` package
(Swagger UI's and ReDoc's release bundles, kept current by its maintainer), served by `service.api.assets`; nothing is
copied into this repository, and the pages reference no other origin.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse

from service.api.assets import DOCS_ASSETS_PATH as ASSETS_PATH

router = APIRouter(include_in_schema=False)


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
        redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )
