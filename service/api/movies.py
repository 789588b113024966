"""Cutout movies (GIF/MP4) and single cutout frames (PNG)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from service.api.cutouts import Dec, OptionalDec, OptionalRa, Ra, Sector, Size, Wait, explicit_position
from service.api.jobflow import Planned, Work, answer_planned, result_url
from service.api.problems import UPSTREAM_PROBLEMS, problem_responses
from service.deps import ServicesDep, TicIdDep
from service.errors import InvalidRequest
from service.rendering.movies import ALLOWED_CMAPS, MP4_AVAILABLE, MovieStyle
from service.schemas import JobView
from service.services.renders import MovieRequest
from service.services.targets import Target

router = APIRouter(tags=["Movies and images"])

# BTJD bounds far outside any mission time, so windows stay arithmetic-safe (a span of 1e308 overflowed).
MIN_BTJD, MAX_BTJD = -1e5, 1e6

Start = Annotated[
    float,
    Query(
        ge=MIN_BTJD,
        le=MAX_BTJD,
        allow_inf_nan=False,
        description="Window start, BTJD (BJD − 2457000): the movie starts at the frame nearest to it. Not after "
        "`end` (422); the window may hold at most TESS_SERVICE_MOVIE_MAX_FRAMES frames and "
        "TESS_SERVICE_MOVIE_MAX_OUTPUT_MB of pixels (422 otherwise).",
        openapi_examples={"dip": {"summary": "The day of the 'weird' dip", "value": 1334.0}},
    ),
]
End = Annotated[
    float,
    Query(
        ge=MIN_BTJD,
        le=MAX_BTJD,
        allow_inf_nan=False,
        description="Window end, BTJD: the movie ends at the frame nearest to it (inclusive). Not before `start`.",
        openapi_examples={"dip": {"summary": "The day of the 'weird' dip", "value": 1335.0}},
    ),
]
Cmap = Annotated[
    str,
    Query(
        description="Matplotlib colormap (one of the listed values; others are a 422).",
        json_schema_extra={"enum": sorted(ALLOWED_CMAPS)},
        openapi_examples={"tutorial": {"summary": "The tutorial's", "value": "YlGnBu_r"}},
    ),
]
Limit = Annotated[
    float | None,
    Query(
        ge=-1e30,
        le=1e30,
        allow_inf_nan=False,
        description="Flux (e-/s) at the bottom (vmin) or top (vmax) of the colour scale; default: robust "
        "percentiles over the selected frames, so one hot pixel cannot wash the movie out. When both are given, "
        "vmin must be below vmax (422).",
        openapi_examples={"auto": {"summary": "Automatic (leave empty)", "value": None}},
    ),
]
Stretch = Annotated[
    Literal["linear", "sqrt", "log", "asinh"],
    Query(
        description="How flux maps to colour.",
        openapi_examples={"faint": {"summary": "Bring out faint sources", "value": "asinh"}},
    ),
]
Scale = Annotated[
    int | None,
    Query(
        ge=1,
        le=32,
        description="Nearest-neighbour upscale factor; default: about 400 px on a side.",
        openapi_examples={"big": {"summary": "8× (400 px for a 50-px cutout)", "value": 8}},
    ),
]
Fps = Annotated[
    float,
    Query(
        ge=1,
        le=50,
        allow_inf_nan=False,
        description="Frames per second (the tutorial's 50 ms a frame is 20).",
        openapi_examples={"tutorial": {"summary": "The tutorial's pace", "value": 20}},
    ),
]
Colorbar = Annotated[
    bool,
    Query(
        description="Draw a colour bar with the flux limits.",
        openapi_examples={"on": {"summary": "With a colour bar", "value": True}},
    ),
]
MovieFormatParam = Annotated[
    Literal["gif", "mp4"],
    Query(
        description="`gif` (animated, looping) or `mp4`" + ("" if MP4_AVAILABLE else " (not available on this server)"),
        openapi_examples={"gif": {"summary": "Animated GIF", "value": "gif"}},
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


def check_window(start: float, end: float) -> None:
    """Refuse a window that runs backwards."""
    if start > end:
        raise InvalidRequest(f"start ({start}) is after end ({end}); the window must run forward in time.")


def _tic_cutout_path(tic_id: int, ra: float | None, dec: float | None) -> str:
    """Return the cutout URL a TIC movie depends on, keeping an explicit position (it is another cutout)."""
    return f"/tic/{tic_id}/cutout" + (f"?ra={ra}&dec={dec}" if ra is not None and dec is not None else "")


def _given(target: Target) -> Callable[[], Awaitable[Target]]:
    async def given() -> Target:
        return target

    return given


async def _serve(
    request: Request,
    services: ServicesDep,
    target: Callable[[], Awaitable[Target]],
    *,
    size: int,
    sector: int | None,
    start: float,
    end: float,
    style: MovieStyle,
    fmt: Literal["gif", "mp4", "png"],
    wait: float | None,
    cutout_path: str,
) -> Response:
    """Plan (``target`` and the sector lookup may need MAST) and serve the rendering, all within ``wait``."""
    check_window(start, end)
    if fmt == "mp4" and not MP4_AVAILABLE:
        raise InvalidRequest("format=mp4 is not available on this server (imageio-ffmpeg is missing); use gif.")
    renders = services.renders

    async def plan() -> MovieRequest:
        plan, observed = await services.cutouts.plan_with_sectors(await target(), size, sector)
        plan = services.cutouts.window_plan(plan, start, end, observed)
        movie = MovieRequest(plan, start + 0.0, end + 0.0, style, fmt)
        renders.check_size(movie)
        return movie

    def work(movie: MovieRequest) -> Work:
        cutout_url = f"{cutout_path}{'&' if '?' in cutout_path else '?'}sector={movie.plan.sector}&size={size}"
        return Work(
            cached=lambda: renders.cached(movie),
            starter=lambda: renders.starter(movie, result_url(request), cutout_url),
            finished=lambda job: renders.after_job(movie, job),
            immutable=movie.plan.sector_pinned,
            max_age_cap_s=None if movie.plan.sector_pinned else services.settings.ttl_sectors_s,
        )

    # Slow planning goes on in a job holding a cutout place (what it waits for is TESScut, and the cutout job it
    # starts takes that place over); a render place is taken only when rendering starts.
    return await answer_planned(request, services, Planned(plan, work, services.cutouts.pool), wait)


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
    start: Start,
    end: End,
    services: ServicesDep,
    style: MovieStyleDep,
    sector: Sector = None,
    size: Size = 50,
    ra: OptionalRa = None,
    dec: OptionalDec = None,
    format: MovieFormatParam = "gif",
    wait: Wait = None,
) -> Response:
    """Serve a movie of a TIC's cutout."""
    check_window(start, end)
    position = explicit_position(ra, dec)
    target = lambda: services.targets.for_tic(tic_id, *position)  # noqa: E731 - resolved by the planning
    return await _serve(
        request, services, target, size=size, sector=sector, start=start, end=end, style=style, fmt=format,
        wait=wait, cutout_path=_tic_cutout_path(tic_id, ra, dec),
    )  # fmt: skip


@router.get(
    "/movie",
    summary="Movie of the cutout frames at a position",
    description=MOVIE_DESCRIPTION,
    responses=MOVIE_RESPONSES,
    response_class=Response,
)
async def movie_at(
    request: Request,
    ra: Ra,
    dec: Dec,
    start: Start,
    end: End,
    services: ServicesDep,
    style: MovieStyleDep,
    sector: Sector = None,
    size: Size = 50,
    format: MovieFormatParam = "gif",
    wait: Wait = None,
) -> Response:
    """Serve a movie of the cutout at a position."""
    return await _serve(
        request, services, _given(Target(ra, dec)), size=size, sector=sector, start=start, end=end, style=style,
        fmt=format, wait=wait, cutout_path=f"/cutout?ra={ra}&dec={dec}",
    )  # fmt: skip


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
    time: Annotated[
        float,
        Query(
            ge=MIN_BTJD,
            le=MAX_BTJD,
            allow_inf_nan=False,
            description="BTJD; the frame nearest to it is drawn.",
            openapi_examples={"dip": {"summary": "Mid-dip", "value": 1334.45}},
        ),
    ],
    services: ServicesDep,
    style: FrameStyleDep,
    sector: Sector = None,
    size: Size = 50,
    ra: OptionalRa = None,
    dec: OptionalDec = None,
    wait: Wait = None,
) -> Response:
    """Serve one frame of a TIC's cutout."""
    position = explicit_position(ra, dec)
    target = lambda: services.targets.for_tic(tic_id, *position)  # noqa: E731 - resolved by the planning
    return await _serve(
        request, services, target, size=size, sector=sector, start=time, end=time, style=style, fmt="png",
        wait=wait, cutout_path=_tic_cutout_path(tic_id, ra, dec),
    )  # fmt: skip
