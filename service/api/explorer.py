"""The explorer: the tutorial's workflow in one web page (`/explore`, `/explore/{tic_id}`), and `/` leading there.

Server-rendered from a Jinja2 template with the page's state (TIC or position, TCE, sector, window) taken from the
URL, so a view can be shared and reloaded; a small plain script (`web/static/explorer.js`) then calls the public
API and draws into Bokeh figures. Every asset comes from this origin (`service.api.assets`).

The pages are for browsers, not part of the API: they are left out of the OpenAPI document, like `/docs`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from service.api.assets import EXPLORER_ASSETS_PATH, WEB_DIR, bokeh_script_urls
from service.api.params import BTJD_RANGE, DEC_RANGE, RA_RANGE
from service.deps import ServicesDep, TicIdDep
from service.errors import InvalidRequest
from service.services.explorer import PageConfig, plot_items_json
from service.tces import TCE_ID_PATTERN

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))

# The same bounds as the API's own parameters: a page never asks the API for what it would refuse anyway.
OptionalTic = Annotated[str | None, Query(pattern=r"^[0-9]{1,11}$")]
OptionalRa = Annotated[float | None, Query(**RA_RANGE)]
OptionalDec = Annotated[float | None, Query(**DEC_RANGE)]
OptionalSector = Annotated[int | None, Query(ge=1, le=999)]
OptionalBtjd = Annotated[float | None, Query(**BTJD_RANGE)]
OptionalTce = Annotated[str | None, Query(pattern=TCE_ID_PATTERN)]


@dataclasses.dataclass(frozen=True)
class PageState:
    """What the URL says the page shows; the script reads it back from the page and keeps the URL in step."""

    tic: int | None = None
    ra: float | None = None
    dec: float | None = None
    tce: str | None = None
    sector: int | None = None
    start: float | None = None
    end: float | None = None


def _check_window(start: float | None, end: float | None) -> None:
    if (start is None) != (end is None):
        raise InvalidRequest("Give both start and end (BTJD) for a window, or neither.")
    if start is not None and end is not None and not start < end:
        raise InvalidRequest(f"start ({start}) must be before end ({end}).")


def _page(request: Request, services: Any, state: PageState) -> HTMLResponse:
    config = PageConfig.of(services.settings)
    response = templates.TemplateResponse(
        request,
        "explore.html",
        {
            "state": dataclasses.asdict(state),
            "config": dataclasses.asdict(config),
            "plots": plot_items_json() if state.tic is not None or state.ra is not None else None,
            "bokeh_scripts": bokeh_script_urls(),
            "assets": EXPLORER_ASSETS_PATH,
        },
    )
    # The page is cheap to render and names versioned assets; let every visit see the current one.
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/")
async def home() -> Response:
    """Send a browser that opens the service's root to the explorer."""
    return RedirectResponse("/explore", status_code=307)


@router.get("/explore", response_class=HTMLResponse)
async def explore(  # noqa: PLR0913 (the page's URL state is these parameters)
    request: Request,
    services: ServicesDep,
    tic: OptionalTic = None,
    ra: OptionalRa = None,
    dec: OptionalDec = None,
    sector: OptionalSector = None,
    start: OptionalBtjd = None,
    end: OptionalBtjd = None,
) -> Response:
    """Show the start page (a TIC or RA/Dec box); send a ``tic`` on to /explore/{tic}; explore a ra/dec position.

    A position has no TCEs: its page shows the FFI light curve of the cutout there.
    """
    _check_window(start, end)
    rest = {"sector": sector, "start": start, "end": end}
    if tic is not None:
        query = urlencode({key: value for key, value in rest.items() if value is not None})
        return RedirectResponse(f"/explore/{int(tic)}" + (f"?{query}" if query else ""), status_code=303)
    if (ra is None) != (dec is None):
        raise InvalidRequest("Give both ra and dec (degrees), or a TIC id.")
    if ra is not None and dec is not None:
        return _page(request, services, PageState(ra=ra, dec=dec, sector=sector, start=start, end=end))
    return _page(request, services, PageState())


@router.get("/explore/{tic_id}", response_class=HTMLResponse)
async def explore_tic(  # noqa: PLR0913 (the page's URL state is these parameters)
    request: Request,
    services: ServicesDep,
    tic_id: TicIdDep,
    tce: OptionalTce = None,
    sector: OptionalSector = None,
    start: OptionalBtjd = None,
    end: OptionalBtjd = None,
) -> Response:
    """Show the explorer of one TIC: its TCEs (or its FFI light curve), events, movies and diagnoses."""
    _check_window(start, end)
    return _page(request, services, PageState(tic=tic_id, tce=tce, sector=sector, start=start, end=end))
