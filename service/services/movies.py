"""Movies (GIF/MP4) and single frames (PNG) of a cutout: two cutout-backed products, declared here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import BinaryIO, Literal

from service import tpf
from service.errors import InvalidRequest
from service.rendering import canvas, colormaps, encoders
from service.rendering import movies as movie_rendering
from service.rendering.movies import ALLOWED_CMAPS as ALLOWED_CMAPS  # re-exported: see below
from service.rendering.movies import MP4_AVAILABLE as MP4_AVAILABLE
from service.rendering.movies import FrameStack, render_frame_png, render_movie
from service.rendering.movies import MovieStyle as MovieStyle
from service.services.cutout_products import CutoutProduct, RenderLimits
from service.services.cutouts import CutoutPlan
from service.services.identity import Product
from service.tpf import FrameWindow, WindowOutsideSector, read_window

# The routes take ALLOWED_CMAPS, MP4_AVAILABLE and MovieStyle from here (re-exported above with `as`): api imports
# no rendering module.
MovieFormat = Literal["gif", "mp4"]
MOVIE_MEDIA_TYPES = {"gif": "image/gif", "mp4": "video/mp4"}


@dataclass(frozen=True)
class MovieParams:
    """Everything that shapes a movie (or, with ``format="png"``, the frame nearest ``start_btjd``)."""

    start_btjd: float
    end_btjd: float
    style: MovieStyle
    format: MovieFormat | Literal["png"]


def ffi_cadence_days(sector: int) -> float:
    """Return the FFI cadence of a sector: 30 min (1–26), 10 min (27–55), 200 s (56 on)."""
    if sector <= 26:
        return 30 / 1440
    if sector <= 55:
        return 10 / 1440
    return 200 / 86400


def _scaled_side(style: MovieStyle, size_px: int) -> int:
    scale = style.scale or max(1, round(400 / size_px))
    return size_px * scale


def check_movie_size(plan: CutoutPlan, params: MovieParams, limits: RenderLimits, frames: int | None = None) -> None:
    """Refuse a movie that could not be served: too many frames, or too many pixels to encode.

    Before the cutout is read, ``frames`` is estimated from the sector's FFI cadence; afterwards it is exact.
    """
    if params.format == "png":
        return
    if frames is None:
        span = (params.end_btjd - params.start_btjd) / ffi_cadence_days(plan.sector)
        frames = math.floor(span) + 1 if math.isfinite(span) else limits.max_frames + 1
    if frames > limits.max_frames:
        raise InvalidRequest(
            f"BTJD {params.start_btjd}–{params.end_btjd} holds about {frames} frames in sector "
            f"{plan.sector}, more than the {limits.max_frames} allowed; shorten the window."
        )
    side = _scaled_side(params.style, plan.size_px)
    # A GIF of noisy pixels compresses to about a byte a pixel or worse: past the budget, refuse before encoding.
    if frames * side * side > limits.max_output_bytes:
        raise InvalidRequest(
            f"A movie of {frames} frames at {side}×{side} px is too large (limit "
            f"{limits.max_output_bytes / 2**20:.0f} MiB of pixels); shorten the window, lower scale= or size=."
        )


def make_movie(source: BinaryIO, plan: CutoutPlan, params: MovieParams, limits: RenderLimits) -> tuple[bytes, str]:
    """Read the frames of the window from the cutout and draw them (a movie, or one frame as PNG)."""
    target = plan.target
    try:
        window = read_window(
            source, target.ra_deg, target.dec_deg, params.start_btjd, params.end_btjd, limits.max_frames
        )
    except WindowOutsideSector as exc:
        raise InvalidRequest(f"{exc} Pass sector= for another sector.") from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    check_movie_size(plan, params, limits, len(window.time_btjd))
    try:
        payload, media_type = _draw(plan, params, window)
    except ValueError as exc:  # e.g. a single vmin above the data's robust top
        raise InvalidRequest(f"These style settings cannot be drawn: {exc}") from exc
    if len(payload) > limits.max_output_bytes:
        raise InvalidRequest(
            f"The movie would be {len(payload) / 2**20:.0f} MiB, over the {limits.max_output_bytes / 2**20:.0f} "
            "MiB limit; shorten the window or lower scale=."
        )
    return payload, media_type


def _draw(plan: CutoutPlan, params: MovieParams, window: FrameWindow) -> tuple[bytes, str]:
    who = f"TIC {plan.target.tic_id}" if plan.target.tic_id else "cutout"
    title = f"{who} · sector {plan.sector}"
    if params.format == "png":
        return render_frame_png(
            window.flux[0],
            float(window.time_btjd[0]),
            int(window.cadence[0]),
            int(window.quality[0]),
            window.target_xy,
            params.style,
            title=title,
        )
    stack = FrameStack(window.flux, window.time_btjd, window.cadence, window.quality)
    return render_movie(stack, window.target_xy, params.style, fmt=params.format, title=title)


def _window(params: MovieParams) -> tuple[float, float]:
    return params.start_btjd, params.end_btjd


# The rendering modules (and the TPF reader) shape the bytes, so their source is part of the products' identity.
_MAKERS = (movie_rendering, canvas, encoders, colormaps, tpf, make_movie, _draw)
MOVIE = CutoutProduct(
    Product("movie", tuple(MOVIE_MEDIA_TYPES.values()), _MAKERS, kind="render"),
    make=make_movie,
    check=check_movie_size,
    window=_window,
)
FRAME = CutoutProduct(
    Product("frame", ("image/png",), _MAKERS, kind="render"),
    make=make_movie,
    check=check_movie_size,
    window=_window,
)
