"""FFI light curves of any star, by TIC or by position: the table, its plot and its events (cutout-backed products)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from starlette.responses import Response

from service.api.cutout_products import serve_for_tic_and_position
from service.api.events import event_params
from service.api.lightcurves import FORMATS, HIGHLIGHT_PATTERN, TableFormat, parse_highlight, plot_size
from service.api.negotiation import negotiate
from service.api.params import BTJD_RANGE, OptionalWindow, described, optional_window
from service.api.problems import ACCEPTED, UPSTREAM_PROBLEMS, binary_answer, binary_content, problem_responses
from service.schemas import EventList, FfiLightCurve
from service.services.ffi_lightcurves import (
    CSV_MEDIA_TYPE,
    FFI_EVENTS,
    FFI_LIGHTCURVE,
    FFI_LIGHTCURVE_PLOT,
    FITS_MEDIA_TYPE,
    JSON_MEDIA_TYPE,
    FfiFormat,
    FfiTableParams,
)
from service.services.lightcurves import LightCurvePlot, PlotSize, PlotView

router = APIRouter(tags=["FFI light curves"])


Highlight = Annotated[
    str | None,
    described(
        "A BTJD window to shade, `start,end`: two numbers within -1e5..1e6, the first not after the second "
        "(422 otherwise).",
        ("mover", "The moving source's pass", "1334.35,1334.55"),
        max_length=100,
        pattern=HIGHLIGHT_PATTERN,
    ),
]
PLOT_WINDOW = optional_window(
    ("Plot only cadences with TIME >= start (BTJD); not after `end` (422).", ("mover", "Zoom in", 1333.5)),
    ("Plot only cadences with TIME <= end (BTJD).", ("mover", "Zoom in", 1335.5)),
    **BTJD_RANGE,
)


# Dependencies are `async def`: FastAPI would run a plain `def` in a worker thread, a hop per request.
async def table_params(
    format: TableFormat = None, accept: Annotated[str | None, Header(include_in_schema=False)] = None
) -> FfiTableParams:
    """Return the table's format: `format=`, else negotiated from Accept (and then the answer varies by it)."""
    chosen: FfiFormat = negotiate(format, accept, FORMATS)  # type: ignore[assignment]
    return FfiTableParams(chosen, negotiated=format is None)


async def plot_params(
    window: Annotated[OptionalWindow, Depends(PLOT_WINDOW)],
    size: Annotated[PlotSize, Depends(plot_size)],
    highlight: Highlight = None,
) -> LightCurvePlot:
    """Return what the plot shows (against time) and its size."""
    return LightCurvePlot(PlotView("time", window.start_btjd, window.end_btjd, parse_highlight(highlight)), size)


METHOD = (
    " Simple aperture photometry of the cached FFI cutout (`sector`, `size` as for `/cutout`; at least 5 px): "
    "the aperture is the star's pixels above a threshold on the median image (a small disk for a faint star), "
    "the background the per-frame median of faint pixels around it; the JSON says which pixels and how. The "
    "first request follows the cutout's wait / 202 / job rules; the result is cached (ETag, 304)."
)
TABLE_ROUTE: dict[str, Any] = {
    "response_model": FfiLightCurve,
    "description": "TIME, FLUX (background-subtracted aperture sum), FLUX_ERR, BACKGROUND, CENTROID_COL, "
    "CENTROID_ROW and QUALITY for every FFI of the sector, as column-oriented JSON (the DV light curve's shape, "
    "plus `aperture_pixels`, `aperture`, `background` and `quality_bits`), CSV, or FITS (a LIGHTCURVE table "
    "and an APERTURE image, which `lightkurve.read` opens as a TessLightCurve), chosen by `format=` or else the "
    "Accept header." + METHOD,
    "responses": {
        200: {
            "description": "The light curve in the negotiated format.",
            "content": {
                CSV_MEDIA_TYPE: {
                    "schema": {"type": "string"},
                    "example": "TIME,FLUX,FLUX_ERR,BACKGROUND,CENTROID_COL,CENTROID_ROW,QUALITY\n"
                    "1325.3285,18712.4,4.4,7425.1,25.28,25.248,2048\n",
                },
                **binary_content(FITS_MEDIA_TYPE),
            },
        },
        **ACCEPTED,
        **problem_responses(404, 406, 422, *UPSTREAM_PROBLEMS),
    },
}
PLOT_ROUTE: dict[str, Any] = {
    "description": "The FFI light curve, detrended (relative to a 2.5-day running median) and without the "
    "cadences of severe QUALITY flags, against time, as a PNG. `start`/`end` zoom (a window alone also picks "
    "the sector); `highlight=start,end` shades a window." + METHOD,
    "response_class": Response,
    "responses": {
        200: binary_answer("The plot.", "image/png"),
        **ACCEPTED,
        **problem_responses(404, 422, *UPSTREAM_PROBLEMS),
    },
}
EXAMPLE_EVENTS: dict[str, Any] = {
    "tic_id": 214568914,
    "tce_id": None,
    "sector": 1,
    "source": "ffi",
    "min_snr": 7.1,
    "max_events": 10,
    "kind": None,
    "n_points": 1267,
    "events": [
        {
            "t0_btjd": 1334.45372,
            "start_btjd": 1334.39477,
            "end_btjd": 1334.51268,
            "duration_hours": 2.83,
            "kind": "bump",
            "depth_ppm": 467824.6,
            "snr": 73.85,
            "n_points": 5,
            "near_gap": False,
            "in_model_transit": None,
            "quality": 0,
            "quality_flags": [],
            "links": {
                "movie": "/tic/214568914/movie?sector=1&start=1334.2768&end=1334.6306",
                "plot": "/tic/214568914/ffi-lightcurve.png?sector=1&start=1334.2768&end=1334.6306"
                "&highlight=1334.3948,1334.5127",
                "diagnosis": "/tic/214568914/diagnosis?sector=1&start=1334.39477&end=1334.51268",
            },
        }
    ],
    "predicted_transits": None,
}
EVENTS_ROUTE: dict[str, Any] = {
    "response_model": EventList,
    "description": "The anomalous windows of the FFI light curve, strongest first: dips and bumps beyond "
    "`min_snr` times the light curve's own noise, found by a box matched filter (30 min to a day) on the flux "
    "detrended by a 2.5-day running median, without the cadences of severe QUALITY flags (momentum dumps, "
    "manual excludes, ...). Each event carries `quality`, the bitwise OR of QUALITY over every cadence in its "
    "window, and `quality_flags`, their names (e.g. `momentum dump`, `stray light`); and links to the cutout "
    "movie and the plot of its window. Works for any star, with or without a TCE." + METHOD,
    "responses": {
        200: {
            "description": "The events (TIC 214568914: the moving source crossing the aperture).",
            "content": {JSON_MEDIA_TYPE: {"example": EXAMPLE_EVENTS}},
        },
        **ACCEPTED,
        **problem_responses(404, 422, *UPSTREAM_PROBLEMS),
    },
}

# Each product is served for a TIC (`/tic/{tic_id}/...`) and for a position (`/...?ra=&dec=`).
serve_for_tic_and_position(router, "ffi-lightcurve", "FFI light curve", FFI_LIGHTCURVE, table_params, TABLE_ROUTE)
serve_for_tic_and_position(
    router, "ffi-lightcurve.png", "FFI light-curve plot", FFI_LIGHTCURVE_PLOT, plot_params, PLOT_ROUTE
)
serve_for_tic_and_position(
    router, "ffi-lightcurve/events", "Events in the FFI light curve", FFI_EVENTS, event_params, EVENTS_ROUTE
)
