"""Cutout movies (GIF/MP4) and single cutout frames (PNG): routes onto the cutout-backed products."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from service.api.answers import respond, then_url
from service.api.cutouts import tic_cutout_path
from service.api.params import (
    BTJD_RANGE,
    CutoutArgs,
    CutoutArgsDep,
    PositionDep,
    PositionOverrideDep,
    Window,
    WindowDep,
    described,
)
from service.api.problems import UPSTREAM_PROBLEMS, problem_responses
from service.deps import Services, ServicesDep, TicIdDep
from service.errors import InvalidRequest
from service.schemas import JobView
from service.services.cutout_products import CutoutProduct
from service.services.movies import ALLOWED_CMAPS, FRAME, MOVIE, MP4_AVAILABLE, MovieParams, MovieStyle
from service.services.targets import TargetSource

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

MOVIE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The movie.",
        "content": {
            "image/gif": {"schema": {"type": "string", "format": "binary"}},
            "video/mp4": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    202: {"description": "The cutout is still being fetched: poll `Location` (/jobs/{id}).", "model": JobView},
    **problem_responses(404, 422, *UPSTREAM_PROBLEMS),
}
FRAME_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The frame.", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
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


async def _serve(
    request: Request,
    services: Services,
    product: CutoutProduct[MovieParams],
    target: TargetSource,
    cutout: CutoutArgs,
    params: MovieParams,
    cutout_path: str,
) -> Response:
    """Plan (``target`` and the sector lookup may need MAST) and serve the product, all within ``wait``."""
    if params.format == "mp4" and not MP4_AVAILABLE:
        raise InvalidRequest("format=mp4 is not available on this server (imageio-ffmpeg is missing); use gif.")
    answer = await services.cutout_products.answer(
        product,
        target,
        params,
        size_px=cutout.size_px,
        sector=cutout.sector,
        wait_s=cutout.wait_s,
        then=then_url(request),
        cutout_path=cutout_path,
    )
    return respond(request, answer, services.limiters)


def _movie(window: Window, style: MovieStyle, fmt: Literal["gif", "mp4", "png"]) -> MovieParams:
    return MovieParams(window.start_btjd, window.end_btjd, style, fmt)


MOVIE_DESCRIPTION = (
    "An animated GIF (or MP4) of the cutout frames from the one nearest `start` to the one nearest `end`, "
    "inclusive, of the sector that covers the window (or `sector=`). Each frame shows its time (BTJD) and "
    "cadence, a marker on the target's pixel, and a red flag when its QUALITY is non-zero. Rendered once, then "
    "served from the cache; a window whose cutout is not cached yet follows the cutout's wait/202/job rules."
)


@router.get(
    "/tic/{tic_id}/movie",
    summary="Movie of a TIC's cutout frames",
    description=MOVIE_DESCRIPTION,
    responses=MOVIE_RESPONSES,
    response_class=Response,
)
async def movie_of_tic(
    request: Request,
    tic_id: TicIdDep,
    window: WindowDep,
    services: ServicesDep,
    style: MovieStyleDep,
    cutout: CutoutArgsDep,
    position: PositionOverrideDep,
    format: MovieFormatParam = "gif",
) -> Response:
    """Serve a movie of a TIC's cutout."""
    target = services.targets.of_tic(tic_id, position.ra_deg, position.dec_deg)
    params = _movie(window, style, format)
    return await _serve(request, services, MOVIE, target, cutout, params, tic_cutout_path(tic_id, position))


@router.get(
    "/movie",
    summary="Movie of the cutout frames at a position",
    description=MOVIE_DESCRIPTION,
    responses=MOVIE_RESPONSES,
    response_class=Response,
)
async def movie_at(
    request: Request,
    position: PositionDep,
    window: WindowDep,
    services: ServicesDep,
    style: MovieStyleDep,
    cutout: CutoutArgsDep,
    format: MovieFormatParam = "gif",
) -> Response:
    """Serve a movie of the cutout at a position."""
    target = services.targets.at(position.ra_deg, position.dec_deg)
    cutout_path = f"/cutout?ra={position.ra_deg}&dec={position.dec_deg}"
    return await _serve(request, services, MOVIE, target, cutout, _movie(window, style, format), cutout_path)


Time = Annotated[
    float,
    described(
        "BTJD; the frame nearest to it is drawn.",
        ("dip", "Mid-dip", 1334.45),
        **BTJD_RANGE,
    ),
]


@router.get(
    "/tic/{tic_id}/frame.png",
    summary="One cutout frame as PNG",
    description="The cutout frame nearest `time` (BTJD), styled like the movies.",
    responses=FRAME_RESPONSES,
    response_class=Response,
)
async def frame_of_tic(
    request: Request,
    tic_id: TicIdDep,
    time: Time,
    services: ServicesDep,
    style: FrameStyleDep,
    cutout: CutoutArgsDep,
    position: PositionOverrideDep,
) -> Response:
    """Serve one frame of a TIC's cutout."""
    target = services.targets.of_tic(tic_id, position.ra_deg, position.dec_deg)
    params = _movie(Window(time + 0.0, time + 0.0), style, "png")
    return await _serve(request, services, FRAME, target, cutout, params, tic_cutout_path(tic_id, position))
