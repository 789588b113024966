"""Cutout movies (GIF/MP4) and single cutout frames (PNG): routes onto the cutout-backed products."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from starlette.responses import Response

from service.api.cutout_products import serve_product
from service.api.params import BTJD_RANGE, End, Start, check_window, described, position_source, tic_source
from service.api.problems import UPSTREAM_PROBLEMS, binary_answer, problem_responses
from service.errors import InvalidRequest
from service.schemas import JobView
from service.services.movies import (
    ALLOWED_CMAPS,
    FRAME,
    MOVIE,
    MP4_AVAILABLE,
    WINDOW_HEADER,
    MovieParams,
    MovieStyle,
)

router = APIRouter(tags=["Movies and images"])

Cmap = Annotated[
    str,
    described(
        "Matplotlib colormap (one of the listed values; others are a 422).",
        ("tutorial", "The tutorial's", "YlGnBu_r"),
        json_schema_extra={"enum": sorted(ALLOWED_CMAPS)},
    ),
]
Limit = Annotated[
    float | None,
    described(
        "Flux (e-/s) at the bottom (vmin) or top (vmax) of the colour scale; default: robust "
        "percentiles over the selected frames, so one hot pixel cannot wash the movie out. When both are given, "
        "vmin must be below vmax (422).",
        ("auto", "Automatic (leave empty)", None),
        ge=-1e30,
        le=1e30,
        allow_inf_nan=False,
    ),
]
Stretch = Annotated[
    Literal["linear", "sqrt", "log", "asinh"],
    described("How flux maps to colour.", ("faint", "Bring out faint sources", "asinh")),
]
Scale = Annotated[
    int | None,
    described(
        "Nearest-neighbour upscale factor; default: about 400 px on a side.",
        ("big", "8× (400 px for a 50-px cutout)", 8),
        ge=1,
        le=32,
    ),
]
Fps = Annotated[
    float,
    described(
        "Frames per second (the tutorial's 50 ms a frame is 20).",
        ("tutorial", "The tutorial's pace", 20),
        ge=1,
        le=50,
        allow_inf_nan=False,
    ),
]
Colorbar = Annotated[
    bool,
    described("Draw a colour bar with the flux limits.", ("on", "With a colour bar", True)),
]
MovieFormatParam = Annotated[
    Literal["gif", "mp4"],
    described(
        "`gif` (animated, looping) or `mp4`" + ("" if MP4_AVAILABLE else " (not available on this server)"),
        ("gif", "Animated GIF", "gif"),
    ),
]

WINDOW_HEADER_DOC: dict[str, Any] = {
    WINDOW_HEADER: {
        "description": "Which frames the movie holds: `start` and `end`, the times (BTJD) of its first and last "
        "frames; `frames`, how many; `clamped`, which ends of the requested window reached past the sector's "
        "frames and were cut to them (`start`, `end`, `both` or `none`); `requested-start` and `requested-end`, "
        "the window as asked.",
        "schema": {"type": "string"},
        "example": "start=1325.32854; end=1353.16206; frames=1282; clamped=both; requested-start=1325.3; "
        "requested-end=1353.2",
    }
}
MOVIE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: binary_answer("The movie.", "image/gif", "video/mp4") | {"headers": WINDOW_HEADER_DOC},
    202: {"description": "The cutout is still being fetched: poll `Location` (/jobs/{id}).", "model": JobView},
    206: binary_answer(
        "The bytes one `Range` header asked for (`Content-Range` says which): how a browser's video player "
        "seeks, and a download resumes.",
        "image/gif",
        "video/mp4",
    )
    | {"headers": WINDOW_HEADER_DOC},
    **problem_responses(404, 416, 422, *UPSTREAM_PROBLEMS),
}
FRAME_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: binary_answer("The frame.", "image/png"),
    202: MOVIE_RESPONSES[202],
    **problem_responses(404, 422, *UPSTREAM_PROBLEMS),
}


# Dependencies are `async def`: FastAPI would run a plain `def` in a worker thread, a hop per request.
async def frame_style(
    cmap: Cmap = "YlGnBu_r",
    vmin: Limit = None,
    vmax: Limit = None,
    stretch: Stretch = "linear",
    scale: Scale = None,
    colorbar: Colorbar = False,
) -> MovieStyle:
    """Validate the styling parameters of an image together and build the style."""
    if cmap not in ALLOWED_CMAPS:
        raise InvalidRequest(f"cmap '{cmap}' is not offered; use one of {', '.join(sorted(ALLOWED_CMAPS))}.")
    if vmin is not None and vmax is not None and not vmin < vmax:
        raise InvalidRequest(f"vmin ({vmin}) must be below vmax ({vmax}).")
    try:
        return MovieStyle(cmap=cmap, vmin=vmin, vmax=vmax, stretch=stretch, scale=scale, colorbar=colorbar)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


async def movie_style(style: Annotated[MovieStyle, Depends(frame_style)], fps: Fps = 20.0) -> MovieStyle:
    """Return the image style with the movie's pace."""
    try:
        return dataclasses.replace(style, fps=fps)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


# The styling parameters reach each route's OpenAPI parameters through these dependencies.
FrameStyleDep = Annotated[MovieStyle, Depends(frame_style)]
MovieStyleDep = Annotated[MovieStyle, Depends(movie_style)]


async def movie_params(start: Start, end: End, style: MovieStyleDep, format: MovieFormatParam = "gif") -> MovieParams:
    """Return what shapes a movie: its window, its style and its format (mp4 only where it can be written)."""
    check_window(start, end)
    if format == "mp4" and not MP4_AVAILABLE:
        raise InvalidRequest("format=mp4 is not available on this server (imageio-ffmpeg is missing); use gif.")
    return MovieParams(start + 0.0, end + 0.0, style, format)


MovieParamsDep = Annotated[MovieParams, Depends(movie_params)]

Time = Annotated[
    float,
    described(
        "BTJD; the frame nearest to it is drawn.",
        ("dip", "Mid-dip", 1334.45),
        **BTJD_RANGE,
    ),
]


async def frame_params(time: Time, style: FrameStyleDep) -> MovieParams:
    """Return what shapes a frame: a movie one instant long, as PNG."""
    return MovieParams(time + 0.0, time + 0.0, style, "png")


FrameParamsDep = Annotated[MovieParams, Depends(frame_params)]


MOVIE_DESCRIPTION = (
    "An animated GIF (or MP4) of the cutout frames from the one nearest `start` to the one nearest `end`, "
    "inclusive, of the sector that covers the window (or `sector=`). A window reaching past the sector's first or "
    "last frame (a box drawn wider than the sector) is cut to the frames there are, and the `TESS-Window` header "
    "says so; only a window with no frame of the sector in it is a 422. Each frame shows its time (BTJD) and "
    "cadence, a marker on the target's pixel, and a red flag when its QUALITY is non-zero. Rendered once, then "
    "served from the cache; a window whose cutout is not cached yet follows the cutout's wait/202/job rules. "
    "A cached movie is served with `Accept-Ranges: bytes`: one `Range` (`bytes=a-b`, `bytes=a-`, `bytes=-n`) is "
    "answered 206 with those bytes, so a browser can play an MP4 while it downloads and seek in it; several "
    "ranges get the whole movie, and a range past its end is 416."
)


# Each route: its path, its own name (the OpenAPI operation id), summary and documentation, and the handler that
# answers its product for the cutout its source names.
MOVIE_ROUTE: dict[str, Any] = {
    "description": MOVIE_DESCRIPTION,
    "responses": MOVIE_RESPONSES,
    "response_class": Response,
}
FRAME_ROUTE: dict[str, Any] = {
    "description": "The cutout frame nearest `time` (BTJD), styled like the movies.",
    "responses": FRAME_RESPONSES,
    "response_class": Response,
}
router.get("/tic/{tic_id}/movie", name="movie_of_tic", summary="Movie of a TIC's cutout frames", **MOVIE_ROUTE)(
    serve_product(MOVIE, tic_source, movie_params)
)
router.get("/movie", name="movie_at", summary="Movie of the cutout frames at a position", **MOVIE_ROUTE)(
    serve_product(MOVIE, position_source, movie_params)
)
router.get("/tic/{tic_id}/frame.png", name="frame_of_tic", summary="One cutout frame as PNG", **FRAME_ROUTE)(
    serve_product(FRAME, tic_source, frame_params)
)
