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
from service.services.cutout_plans import estimated_sector_span_btjd
from service.services.cutout_products import CutoutProduct, RenderLimits, outside_sector
from service.services.cutouts import CutoutPlan
from service.services.identity import Product
from service.services.tce_products import Made
from service.tpf import FrameWindow, WindowOutsideSector, read_window

# The routes take ALLOWED_CMAPS, MP4_AVAILABLE and MovieStyle from here (re-exported above with `as`): api imports
# no rendering module.
MovieFormat = Literal["gif", "mp4"]
MOVIE_MEDIA_TYPES = {"gif": "image/gif", "mp4": "video/mp4"}
# Every movie says which frames it holds, and whether the window asked for was cut to the sector's frames.
WINDOW_HEADER = "TESS-Window"
# The sector schedule drifts from its estimate (`estimated_sector_span_btjd`) by about this much in the first years.
SCHEDULE_MARGIN_DAYS = 1.0


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
    # The window as it will be cut to the sector's frames (`tpf.clamp_window`): before reading, to the sector's
    # estimated span, so a box drawn wider than the sector is not refused for frames that do not exist.
    first, last = estimated_sector_span_btjd(plan.sector, SCHEDULE_MARGIN_DAYS)
    start, end = max(params.start_btjd, first), min(params.end_btjd, last)
    if frames is None:
        span = max(0.0, end - start) / ffi_cadence_days(plan.sector)
        frames = math.floor(span) + 1 if math.isfinite(span) else limits.max_frames + 1
    if frames > limits.max_frames:
        raise InvalidRequest(
            f"BTJD {start:.4f}–{end:.4f} holds about {frames} frames in sector "
            f"{plan.sector}, more than the {limits.max_frames} allowed; shorten the window."
        )
    side = _scaled_side(params.style, plan.size_px)
    # A GIF of noisy pixels compresses to about a byte a pixel or worse: past the budget, refuse before encoding.
    if frames * side * side > limits.max_output_bytes:
        raise InvalidRequest(
            f"A movie of {frames} frames at {side}×{side} px is too large (limit "
            f"{limits.max_output_bytes / 2**20:.0f} MiB of pixels); shorten the window, lower scale= or size=."
        )


def make_movie(source: BinaryIO, plan: CutoutPlan, params: MovieParams, limits: RenderLimits) -> Made:
    """Read the frames of the window from the cutout and draw them (a movie, or one frame as PNG).

    A window reaching past the sector's first or last frame is cut there; a movie says so in `WINDOW_HEADER`.
    """
    target = plan.target
    try:
        window = read_window(
            source, target.ra_deg, target.dec_deg, params.start_btjd, params.end_btjd, limits.max_frames
        )
    except WindowOutsideSector as exc:
        raise outside_sector(exc, plan.sector) from exc
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
    headers = {} if params.format == "png" else {WINDOW_HEADER: window_header(window)}
    return Made(payload, media_type, headers)


def window_header(window: FrameWindow) -> str:
    """Return the `WINDOW_HEADER` of a movie of ``window``'s frames.

    ``start=1325.32854; end=1353.16206; frames=1282; clamped=both; requested-start=1325.3; requested-end=1353.2``:
    the times (BTJD) of the first and last frames shown, how many there are, which ends of the requested window
    were cut to the sector's frames (``start``, ``end``, ``both`` or ``none``), and the window as requested.
    """
    times, cut = window.time_btjd, window.window
    return (
        f"start={float(times[0]):.5f}; end={float(times[-1]):.5f}; frames={len(times)}; "
        f"clamped={cut.clamped or 'none'}; "
        f"requested-start={cut.requested_start_btjd:g}; requested-end={cut.requested_end_btjd:g}"
    )


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
_MAKERS = (movie_rendering, canvas, encoders, colormaps, tpf, make_movie, window_header, _draw)
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
