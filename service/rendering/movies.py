"""Cutout movies (GIF, mp4) and single-frame PNGs: pure functions, frames in, (bytes, media type) out.

Fast by construction: every frame becomes palette indices once (a numpy stretch over the whole stack), is upscaled by
repetition and handed to Pillow as a one-byte-a-pixel "P" image whose 256-entry palette is the colormap plus a few
reserved annotation colours. No matplotlib figure per frame, no colour quantisation, no dithering.

This module checks the inputs and says what each frame is labelled; `canvas` composes the frames and `encoders`
writes them. Conventions: row 0 of a frame is the bottom of the picture (FITS, ``imshow(origin="lower")``);
``target_xy`` is (x = column, y = row), 0-based, in the frame's array coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from service.rendering.canvas import (
    MAX_SIDE_PX,
    STRETCHES,
    Canvas,
    Layout,
    Stretch,
    robust_limits,
    to_palette_indices,
)
from service.rendering.colormaps import ALLOWED_CMAPS, check_cmap, palette_rgb
from service.rendering.encoders import (
    GIF_MEDIA_TYPE,
    MP4_AVAILABLE,
    MP4_MEDIA_TYPE,
    PNG_MEDIA_TYPE,
    encode_gif,
    encode_mp4,
    encode_png,
)

__all__ = [
    "ALLOWED_CMAPS",
    "GIF_MEDIA_TYPE",
    "MP4_AVAILABLE",
    "MP4_MEDIA_TYPE",
    "PNG_MEDIA_TYPE",
    "MovieStyle",
    "Stretch",
    "render_frame_png",
    "render_movie",
    "robust_limits",
]


@dataclass(frozen=True)
class MovieStyle:
    """How frames look: colormap, limits, stretch, size, speed and annotations."""

    cmap: str = "YlGnBu_r"  # one of ALLOWED_CMAPS
    vmin: float | None = None  # None: a robust percentile over the frames drawn
    vmax: float | None = None
    stretch: Stretch = "linear"
    scale: int | None = None  # nearest-neighbour upscale factor; None: the longer side becomes ~400 px
    fps: float = 20.0
    colorbar: bool = False
    annotate: bool = True  # time/cadence text, target marker, quality flag

    def __post_init__(self) -> None:
        check_cmap(self.cmap)
        if self.stretch not in STRETCHES:
            raise ValueError(f"Unknown stretch {self.stretch!r}; choose one of {', '.join(sorted(STRETCHES))}.")
        if self.scale is not None and not 1 <= self.scale <= MAX_SIDE_PX:
            raise ValueError(f"scale must be a positive integer, not {self.scale}.")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, not {self.fps}.")
        for name, value in (("vmin", self.vmin), ("vmax", self.vmax)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value}.")
        if self.vmin is not None and self.vmax is not None and self.vmax <= self.vmin:
            raise ValueError(f"vmax ({self.vmax}) must be greater than vmin ({self.vmin}).")


@dataclass(frozen=True)
class FrameStack:
    """Frames (n, ny, nx) and, one per frame, their time (BTJD), cadence number and QUALITY flags."""

    frames: npt.ArrayLike
    times_btjd: npt.ArrayLike
    cadences: npt.ArrayLike
    quality: npt.ArrayLike


def render_movie(
    stack: FrameStack,
    target_xy: tuple[float, float] | None,
    style: MovieStyle,
    *,
    fmt: Literal["gif", "mp4"] = "gif",
    title: str | None = None,
) -> tuple[bytes, str]:
    """Render a stack of frames as a looping GIF or an H.264 mp4; return (bytes, media type).

    Each frame is annotated (when ``style.annotate``) with its time and cadence number ("frame i" where the cadence
    is 0, as TESScut writes it), a ring around the target, and a red border plus "Q=<flags>" where QUALITY is not 0.
    NaN pixels are drawn in the palette's "no data" colour. The GIF has one frame per input frame, its bytes are
    deterministic, and its delay is ``1000 / fps`` ms rounded to whole centiseconds, at least 20 ms (fps <= 50).
    Beyond the input, memory holds one byte per input pixel and the one frame being encoded.

    Raises ValueError on inconsistent inputs, RuntimeError("mp4 needs imageio-ffmpeg") when mp4 cannot be written.
    """
    cube = _as_cube(stack.frames)
    n = cube.shape[0]
    times = _per_frame(stack.times_btjd, n, float)
    cadence_numbers, flags = _per_frame(stack.cadences, n), _per_frame(stack.quality, n)
    if fmt not in ("gif", "mp4"):
        raise ValueError(f"Unknown movie format {fmt!r}; choose gif or mp4.")
    if fmt == "mp4" and not MP4_AVAILABLE:
        raise RuntimeError("mp4 needs imageio-ffmpeg")
    low, high = _limits(cube, style)
    indices = to_palette_indices(cube, low, high, style.stretch)
    canvas = Canvas.build(cube.shape[1:], target_xy, title, (low, high), _layout(style, video=fmt == "mp4"))
    palette = palette_rgb(style.cmap).tobytes()
    images = (
        canvas.draw(indices[i], _frame_label(i, float(times[i]), int(cadence_numbers[i])), int(flags[i]), palette)
        for i in range(n)
    )
    if fmt == "gif":
        return encode_gif(images, style.fps), GIF_MEDIA_TYPE
    return encode_mp4(images, canvas.size, style.fps), MP4_MEDIA_TYPE


def render_frame_png(
    frame: npt.ArrayLike,
    time_btjd: float,
    cadence: int,
    quality: int,
    target_xy: tuple[float, float] | None,
    style: MovieStyle,
    title: str | None = None,
) -> tuple[bytes, str]:
    """Render one frame (ny, nx) as a palette PNG with the movie's styling; return (bytes, "image/png")."""
    image = np.asarray(frame, dtype=float)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"A frame must be a non-empty 2-D array, not shape {image.shape}.")
    cube = image[np.newaxis]
    low, high = _limits(cube, style)
    indices = to_palette_indices(cube, low, high, style.stretch)
    canvas = Canvas.build(image.shape, target_xy, title, (low, high), _layout(style, video=False))
    drawn = canvas.draw(
        indices[0], _frame_label(0, float(time_btjd), int(cadence)), int(quality), palette_rgb(style.cmap).tobytes()
    )
    return encode_png(drawn), PNG_MEDIA_TYPE


def _as_cube(frames: npt.ArrayLike) -> npt.NDArray[np.floating[Any]]:
    cube = np.asarray(frames)
    if cube.ndim != 3 or 0 in cube.shape:
        raise ValueError(f"frames must be a non-empty (n, ny, nx) array, not shape {cube.shape}.")
    if cube.dtype.kind != "f":
        cube = cube.astype(np.float32)
    return cube


def _per_frame(values: npt.ArrayLike, n: int, dtype: type = np.int64) -> npt.NDArray[Any]:
    array: npt.NDArray[Any] = np.asarray(values, dtype=dtype).reshape(-1)
    if array.size != n:
        raise ValueError(f"Expected one value per frame ({n}), got {array.size}.")
    return array


def _limits(cube: npt.NDArray[np.floating[Any]], style: MovieStyle) -> tuple[float, float]:
    if style.vmin is not None and style.vmax is not None:
        return style.vmin, style.vmax
    low, high = robust_limits(cube)
    low = style.vmin if style.vmin is not None else low
    high = style.vmax if style.vmax is not None else high
    if high <= low:
        raise ValueError(f"vmax ({high:.6g}) must be greater than vmin ({low:.6g}); set both, or neither.")
    return low, high


def _layout(style: MovieStyle, *, video: bool) -> Layout:
    # A video's frame goes on H.264's 8-px block grid (see `Layout`); GIFs and PNGs keep the tight layout.
    return Layout(
        scale=style.scale, annotate=style.annotate, colorbar=style.colorbar, even=video, grid_px=8 if video else 1
    )


def _frame_label(index: int, time_btjd: float, cadence: int) -> str:
    when = f"BTJD {time_btjd:.4f}" if math.isfinite(time_btjd) else "BTJD n/a"
    which = f"cadence {cadence}" if cadence > 0 else f"frame {index}"
    return f"{when}  {which}"
