"""Static assets the pages need, served from the installed packages themselves: nothing is copied into the repo.

- Swagger UI's and ReDoc's bundles from `fastapi-offline` under `/static/docs` (see `service.api.docs`);
- BokehJS from the installed `bokeh` package under `/static/bokeh/static` (Bokeh's own "server" layout), so the
  explorer and the ExoMAST phase-plot mirror load the exact BokehJS of the Python Bokeh that built their plots;
- the explorer's own script and style sheet from `service/api/web/` under `/static/explorer`.

Every page the service serves names only these paths: it works on a network that reaches nothing else.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from bokeh.resources import Resources
from bokeh.util.paths import static_path
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

DOCS_ASSETS_PATH = "/static/docs"
BOKEH_ROOT = "/static/bokeh/"
EXPLORER_ASSETS_PATH = "/static/explorer"
WEB_DIR = Path(__file__).resolve().parent / "web"


def bokeh_resources() -> Resources:
    """Return Bokeh resources pointing at this service's copy of BokehJS (no CDN)."""
    return Resources(mode="server", root_url=BOKEH_ROOT)


def bokeh_script_urls() -> list[str]:
    """Return the BokehJS script URLs a page with Bokeh plots loads, in order: the core, WebGL and the widgets.

    Not the tables (no DataTable is drawn) nor MathJax (no LaTeX labels): 2.1 MB less for every first visit.
    """
    return [url for url in bokeh_resources().js_files if "tables" not in url and "mathjax" not in url]


def install_assets(app: FastAPI) -> None:
    """Mount the documentation's, Bokeh's and the explorer's assets."""
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    app.mount(f"{BOKEH_ROOT}static", StaticFiles(directory=str(static_path())), name="bokeh-assets")
    app.mount(EXPLORER_ASSETS_PATH, StaticFiles(directory=str(WEB_DIR / "static")), name="explorer-assets")
