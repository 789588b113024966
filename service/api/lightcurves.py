"""DV light curves as JSON, CSV or FITS."""

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import Response

from service.api.answers import respond
from service.api.negotiation import negotiate
from service.api.params import BTJD_RANGE, OptionalWindow, described, optional_window
from service.api.problems import UPSTREAM_PROBLEMS, binary_answer, binary_content, problem_responses
from service.api.tces import TceIdPath, serve_tce_product
from service.deps import ServicesDep, TicIdDep
from service.errors import InvalidRequest
from service.schemas import LightCurve
from service.services.answers import CachePolicy, Served
from service.services.lightcurves import (
    CSV_MEDIA_TYPE,
    FITS_MEDIA_TYPE,
    JSON_MEDIA_TYPE,
    LIGHTCURVE,
    LIGHTCURVE_PLOT,
    LightCurveParams,
    LightCurvePlot,
    PlotSize,
    PlotView,
)

router = APIRouter(tags=["Data Validation"])

FORMATS = {"json": JSON_MEDIA_TYPE, "csv": "text/csv", "fits": FITS_MEDIA_TYPE}
MAX_COLUMNS_PARAM_LENGTH = 1000
_NUMBER = r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*"
# Two plain decimal numbers: what `parse_highlight` reads (it checks their range and order itself).
HIGHLIGHT_PATTERN = rf"^{_NUMBER},{_NUMBER}$"


def _parse_columns(columns: str | None) -> tuple[str, ...] | None:
    if columns is None:
        return None
    names = tuple(name.strip() for name in columns.split(",") if name.strip())
    if not names:
        raise InvalidRequest("query parameter 'columns' names no column; give e.g. columns=TIME,LC_DETREND.")
    return names


@dataclass(frozen=True)
class TableAsk:
    """A light-curve table request: what shapes the table, and whether the answer varies with ``Accept``."""

    params: LightCurveParams
    vary: str | None


TABLE_WINDOW = optional_window(
    (
        "Keep rows with TIME >= start (BTJD = BJD - 2457000); not after `end` (422).",
        ("dip", "Just before the 'weird' dip", 1334.0),
    ),
    ("Keep rows with TIME <= end (BTJD).", ("dip", "Just after the 'weird' dip", 1335.0)),
    allow_inf_nan=False,
)
PLOT_WINDOW = optional_window(
    ("Plot only rows with TIME >= start (BTJD); not after `end` (422).", ("dip", "Zoom on the dip", 1333.5)),
    ("Plot only rows with TIME <= end (BTJD).", ("dip", "Zoom on the dip", 1335.5)),
    **BTJD_RANGE,
)


# The format of a light-curve table (DV or FFI); `format=` overrides the Accept header.
TableFormat = Annotated[
    Literal["json", "csv", "fits"] | None,
    Query(
        description="Output format; overrides the Accept header.",
        openapi_examples={
            "json": {"summary": "Column-oriented JSON", "value": "json"},
            "csv": {"summary": "CSV with a header row", "value": "csv"},
            "fits": {"summary": "FITS binary table", "value": "fits"},
        },
    ),
]


# Dependencies are `async def`: FastAPI would run a plain `def` in a worker thread, a hop per request.
async def table_ask(
    window: Annotated[OptionalWindow, Depends(TABLE_WINDOW)],
    format: TableFormat = None,
    columns: Annotated[
        str | None,
        described(
            "Comma-separated column names (case-insensitive); all columns when absent. A name the "
            "light curve does not have is a 422 that lists the ones it has.",
            ("plot", "What a plot needs", "TIME,PHASE,LC_DETREND,MODEL_INIT"),
            max_length=MAX_COLUMNS_PARAM_LENGTH,
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TableAsk:
    """Return the table request: the window checked, the format negotiated, the columns parsed."""
    chosen = negotiate(format, accept, FORMATS)
    params = LightCurveParams(chosen, _parse_columns(columns), window.start_btjd, window.end_btjd)  # type: ignore[arg-type]
    return TableAsk(params, vary=None if format is not None else "Accept")


@router.get(
    "/tic/{tic_id}/tces/{tce_id}/lightcurve",
    response_model=LightCurve,
    summary="Get a TCE's DV light curve",
    description="The Data Validation time series of a TCE (TIME, PHASE, LC_INIT, LC_DETREND, MODEL_INIT, ...). "
    "Column-oriented JSON (missing values are null), CSV, or a FITS binary table carrying units and the DV "
    "header keywords — chosen by `?format=` or else the `Accept` header. `columns=` picks columns; "
    "`start=`/`end=` (BTJD) pick rows.",
    responses={
        200: {
            "description": "The light curve in the negotiated format.",
            "content": {
                CSV_MEDIA_TYPE: {
                    "schema": {"type": "string"},
                    "example": "TIME,LC_DETREND\n1334.0011,0.00312\n1334.0025,\n",
                },
                **binary_content(FITS_MEDIA_TYPE),
            },
        },
        **problem_responses(404, 406, 409, 422, *UPSTREAM_PROBLEMS),
    },
)
async def get_lightcurve(
    request: Request,
    tic_id: TicIdDep,
    tce_id: TceIdPath,
    services: ServicesDep,
    ask: Annotated[TableAsk, Depends(table_ask)],
) -> Response:
    """Serve one TCE's DV light curve."""
    found = await services.tce_products.answer(LIGHTCURVE, tic_id, tce_id, ask.params)
    return respond(request, Served(found, CachePolicy(vary=ask.vary)), services.limiters)


def parse_highlight(highlight: str | None) -> tuple[float, float] | None:
    """Return the ``start,end`` BTJD window to shade, or None; 422 when malformed, backwards or out of range."""
    if highlight is None:
        return None
    try:
        first, second = (float(part) for part in highlight.split(","))
    except ValueError as exc:
        raise InvalidRequest(f"highlight '{highlight}' must be two BTJD times, start,end (e.g. 1334,1335).") from exc
    if not (-1e5 <= first <= second <= 1e6):
        raise InvalidRequest(f"highlight '{highlight}' must be two BTJD times within -1e5..1e6, start before end.")
    return first, second


async def plot_view(
    window: Annotated[OptionalWindow, Depends(PLOT_WINDOW)],
    x: Annotated[
        Literal["phase", "time"],
        described(
            "Horizontal axis: `phase` (folded at the TCE's period) or `time` (BTJD).", ("time", "Against time", "time")
        ),
    ] = "phase",
    highlight: Annotated[
        str | None,
        described(
            "A BTJD window to shade, `start,end`: two numbers within -1e5..1e6, the first not after "
            "the second (422 otherwise).",
            ("dip", "The movie's window", "1334,1335"),
            max_length=100,
            pattern=HIGHLIGHT_PATTERN,
        ),
    ] = None,
) -> PlotView:
    """Return what the plot shows, refusing a window that runs backwards or a malformed highlight."""
    return PlotView(x, window.start_btjd, window.end_btjd, parse_highlight(highlight))


async def plot_size(
    width: Annotated[int, described("Width in pixels.", ("w", "1000 px", 1000), ge=200, le=3000)] = 1000,
    height: Annotated[int, described("Height in pixels.", ("h", "500 px", 500), ge=150, le=2000)] = 500,
    dpi: Annotated[int, described("Dots per inch (text size).", ("d", "100", 100), ge=50, le=300)] = 100,
) -> PlotSize:
    """Return the plot's size."""
    return PlotSize(width, height, dpi)


async def lightcurve_plot(
    view: Annotated[PlotView, Depends(plot_view)], size: Annotated[PlotSize, Depends(plot_size)]
) -> LightCurvePlot:
    """Return the plot request: what it shows and its size."""
    return LightCurvePlot(view, size)


router.get(
    "/tic/{tic_id}/tces/{tce_id}/lightcurve.png",
    name="get_lightcurve_png",
    summary="Plot a TCE's DV light curve",
    description="The detrended light curve against phase (default, with the transit model over it) or against "
    "time (BTJD; gaps shown as gaps), as a PNG. `start`/`end` zoom to a time window; `highlight=start,end` "
    "shades one. Rendered once, then served from the cache.",
    response_class=Response,
    responses={
        200: binary_answer("The plot.", "image/png"),
        **problem_responses(404, 409, 422, *UPSTREAM_PROBLEMS),
    },
)(serve_tce_product(LIGHTCURVE_PLOT, lightcurve_plot))
