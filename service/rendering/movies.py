"""Cutout movies (GIF, mp4) and single-frame PNGs: pure functions, frames in, (bytes, media type) out.

Fast by construction: every frame becomes palette indices once (a numpy stretch over the whole stack), is upscaled by
repetition and handed to Pillow as a one-byte-a-pixel "P" image whose 256-entry palette is the colormap plus a few
reserved annotation colours. No matplotlib figure per frame, no colour quantisation, no dithering.

Conventions: row 0 of a frame is the bottom of the picture (FITS, ``imshow(origin="lower")``); ``target_xy`` is
(x = column, y = row), 0-based, in the frame's array coordinates.
"""

from __future__ import annotations

import importlib
import io
import itertools
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import GifImagePlugin, Image, ImageDraw, ImageFont

from service.rendering.colormaps import (
    ALLOWED_CMAPS,
    BAD_INDEX,
    BLACK_INDEX,
    N_LEVELS,
    RED_INDEX,
    WHITE_INDEX,
    check_cmap,
    palette_rgb,
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

Stretch = Literal["linear", "sqrt", "log", "asinh"]
_STRETCHES: frozenset[str] = frozenset({"linear", "sqrt", "log", "asinh"})

GIF_MEDIA_TYPE = "image/gif"
MP4_MEDIA_TYPE = "video/mp4"
PNG_MEDIA_TYPE = "image/png"

DEFAULT_SIDE_PX = 400  # the frame's longer side when MovieStyle.scale is None
MAX_SIDE_PX = 4096
# GIF delays are whole centiseconds, and browsers play delays under 20 ms at 100 ms.
_MIN_GIF_DELAY_MS = 20
# Frames stretched at a time: bounds the float32 working copy whatever the movie's length.
_CHUNK_FRAMES = 256
# At most this many pixel values feed the percentiles; more only costs time.
_MAX_LIMIT_SAMPLES = 2_000_000

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _load_ffmpeg() -> Any:
    """Return the imageio_ffmpeg module when it and its ffmpeg binary are there, else None."""
    try:
        module = importlib.import_module("imageio_ffmpeg")
        module.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
    return module


_FFMPEG = _load_ffmpeg()
MP4_AVAILABLE: bool = _FFMPEG is not None


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
        if self.stretch not in _STRETCHES:
            raise ValueError(f"Unknown stretch {self.stretch!r}; choose one of {', '.join(sorted(_STRETCHES))}.")
        if self.scale is not None and not 1 <= self.scale <= MAX_SIDE_PX:
            raise ValueError(f"scale must be a positive integer, not {self.scale}.")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, not {self.fps}.")
        for name, value in (("vmin", self.vmin), ("vmax", self.vmax)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value}.")
        if self.vmin is not None and self.vmax is not None and self.vmax <= self.vmin:
            raise ValueError(f"vmax ({self.vmax}) must be greater than vmin ({self.vmin}).")


def robust_limits(frames: npt.ArrayLike, low_pct: float = 1.0, high_pct: float = 99.5) -> tuple[float, float]:
    """Return (low, high) display limits: percentiles of the finite pixels, so a few hot pixels cannot set the range.

    NaN and infinite pixels are ignored; with no finite pixel the limits are (0, 1). When the percentiles coincide
    (a flat field), the full range is used, and failing that a unit-wide window around the value.
    """
    values = np.asarray(frames)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    values = values.reshape(-1)
    if values.size > _MAX_LIMIT_SAMPLES:
        # An even, deterministic subsample, taken before any copy: a long cutout need not be copied whole.
        values = values[:: math.ceil(values.size / _MAX_LIMIT_SAMPLES)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, [low_pct, high_pct]))
    if high <= low:
        low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low - 0.5, low + 0.5
    return low, high


def render_movie(
    frames: npt.ArrayLike,
    times_btjd: npt.ArrayLike,
    cadences: npt.ArrayLike,
    quality: npt.ArrayLike,
    target_xy: tuple[float, float] | None,
    style: MovieStyle,
    *,
    fmt: Literal["gif", "mp4"] = "gif",
    title: str | None = None,
) -> tuple[bytes, str]:
    """Render frames (n, ny, nx) as a looping GIF or an H.264 mp4; return (bytes, media type).

    Each frame is annotated (when ``style.annotate``) with its time and cadence number ("frame i" where the cadence
    is 0, as TESScut writes it), a ring around the target, and a red border plus "Q=<flags>" where QUALITY is not 0.
    NaN pixels are drawn in the palette's "no data" colour. The GIF has one frame per input frame, its bytes are
    deterministic, and its delay is ``1000 / fps`` ms rounded to whole centiseconds, at least 20 ms (fps <= 50).
    Beyond the input, memory holds one byte per input pixel and the one frame being encoded.

    Raises ValueError on inconsistent inputs, RuntimeError("mp4 needs imageio-ffmpeg") when mp4 cannot be written.
    """
    cube = _as_cube(frames)
    n = cube.shape[0]
    times, cadence_numbers, flags = _per_frame(times_btjd, n, float), _per_frame(cadences, n), _per_frame(quality, n)
    if fmt not in ("gif", "mp4"):
        raise ValueError(f"Unknown movie format {fmt!r}; choose gif or mp4.")
    if fmt == "mp4" and not MP4_AVAILABLE:
        raise RuntimeError("mp4 needs imageio-ffmpeg")
    low, high = _limits(cube, style)
    indices = _to_indices(cube, low, high, style.stretch)
    canvas = _Canvas.build(cube.shape[1], cube.shape[2], style, target_xy, title, (low, high), even=fmt == "mp4")
    palette = palette_rgb(style.cmap).tobytes()
    images = (
        canvas.draw(indices[i], _frame_label(i, float(times[i]), int(cadence_numbers[i])), int(flags[i]), palette)
        for i in range(n)
    )
    if fmt == "gif":
        return _encode_gif(images, style.fps), GIF_MEDIA_TYPE
    return _encode_mp4(images, canvas.size, style.fps), MP4_MEDIA_TYPE


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
    indices = _to_indices(cube, low, high, style.stretch)
    canvas = _Canvas.build(image.shape[0], image.shape[1], style, target_xy, title, (low, high), even=False)
    drawn = canvas.draw(
        indices[0], _frame_label(0, float(time_btjd), int(cadence)), int(quality), palette_rgb(style.cmap).tobytes()
    )
    buffer = io.BytesIO()
    drawn.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue(), PNG_MEDIA_TYPE


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


def _to_indices(cube: npt.NDArray[np.floating[Any]], low: float, high: float, stretch: str) -> npt.NDArray[np.uint8]:
    """Map pixel values to palette indices 0..N_LEVELS-1 through the stretch; non-finite pixels to BAD_INDEX."""
    indices = np.empty(cube.shape, dtype=np.uint8)
    scale = 1.0 / (high - low)
    # Values far outside the limits may overflow float32 on the way to the clip; the clip makes them right.
    with np.errstate(over="ignore"):
        for start in range(0, cube.shape[0], _CHUNK_FRAMES):
            chunk = cube[start : start + _CHUNK_FRAMES]
            bad = ~np.isfinite(chunk)
            x = chunk.astype(np.float32)  # a copy: everything below works in place on it
            x[bad] = low
            x -= np.float32(low)
            x *= np.float32(scale)
            np.clip(x, 0.0, 1.0, out=x)
            if stretch == "sqrt":
                np.sqrt(x, out=x)
            elif stretch == "log":  # log10(1 + 1000 x) / log10(1001)
                x *= np.float32(1000.0)
                np.log1p(x, out=x)
                x *= np.float32(1.0 / math.log(1001.0))
            elif stretch == "asinh":  # asinh(x / 0.1) / asinh(10)
                x *= np.float32(10.0)
                np.arcsinh(x, out=x)
                x *= np.float32(1.0 / math.asinh(10.0))
            x *= np.float32(N_LEVELS - 1)
            x += np.float32(0.5)
            np.clip(x, 0.0, N_LEVELS - 1, out=x)
            out = x.astype(np.uint8)
            out[bad] = BAD_INDEX
            indices[start : start + _CHUNK_FRAMES] = out
    return indices


def _frame_label(index: int, time_btjd: float, cadence: int) -> str:
    when = f"BTJD {time_btjd:.4f}" if math.isfinite(time_btjd) else "BTJD n/a"
    which = f"cadence {cadence}" if cadence > 0 else f"frame {index}"
    return f"{when}  {which}"


def _format_limit(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class _Canvas:
    """Where everything goes on a frame, and everything that is the same on every frame, drawn once."""

    template: npt.NDArray[np.uint8]  # (height, width) palette indices: background, colorbar and its labels
    image_box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the upscaled frame
    scale: int
    border_px: int  # the quality flag's border; 0 without annotations
    marker_at: npt.NDArray[np.intp]  # flat canvas positions of the target marker's pixels
    marker_colors: npt.NDArray[np.uint8]
    font: _Font
    label_y: int  # where each frame's own line of text goes
    annotate: bool

    @property
    def size(self) -> tuple[int, int]:
        """Return (width, height) in pixels."""
        return self.template.shape[1], self.template.shape[0]

    @classmethod
    def build(
        cls,
        ny: int,
        nx: int,
        style: MovieStyle,
        target_xy: tuple[float, float] | None,
        title: str | None,
        limits: tuple[float, float],
        *,
        even: bool,
    ) -> _Canvas:
        """Lay out a canvas for (ny, nx) frames; ``even`` rounds its size up to even numbers (H.264 needs them)."""
        scale = style.scale or max(1, round(DEFAULT_SIDE_PX / max(ny, nx)))
        image_w, image_h = nx * scale, ny * scale
        if max(image_w, image_h) > MAX_SIDE_PX:
            raise ValueError(f"Frames of {image_w}×{image_h} px are too large; lower scale (at most {MAX_SIDE_PX} px).")
        font_px = int(min(16, max(10, round(image_w / 32))))
        font: _Font = ImageFont.load_default(size=font_px)
        line_px = font_px + 4
        annotate = style.annotate
        title = title if annotate else None
        border = max(2, min(6, scale // 2)) if annotate else 0
        strip_h = line_px * (2 if title else 1) + 4 if annotate else 0
        labels = (_format_limit(limits[1]), _format_limit(limits[0]))
        bar_w = max(10, image_w // 30)
        label_w = math.ceil(max(font.getlength(label) for label in labels))
        panel_w = 6 + bar_w + 4 + label_w + 4 if style.colorbar else 0
        x0, y0 = border, strip_h + border
        width, height = 2 * border + image_w + panel_w, strip_h + 2 * border + image_h
        if even:
            width, height = width + width % 2, height + height % 2
        template = np.full((height, width), BLACK_INDEX, dtype=np.uint8)
        texts: list[tuple[tuple[float, float], str, str]] = []  # drawn once here, not on every frame
        if title:
            texts.append(((4, 2), title, "la"))
        if style.colorbar:
            bar_x = x0 + image_w + border + 6
            # Top row is the highest level: the bar reads like the image, bright up.
            levels = np.linspace(N_LEVELS - 1, 0, image_h).round().astype(np.uint8)
            template[y0 : y0 + image_h, bar_x : bar_x + bar_w] = levels[:, np.newaxis]
            texts.append(((bar_x + bar_w + 4, y0), labels[0], "la"))
            texts.append(((bar_x + bar_w + 4, y0 + image_h), labels[1], "ld"))
        if texts:
            with_texts = Image.fromarray(template)
            draw = ImageDraw.Draw(with_texts)
            draw.fontmode = "1"  # no antialiasing: in-between values would be other palette entries
            for xy, text, anchor in texts:
                draw.text(xy, text, fill=WHITE_INDEX, font=font, anchor=anchor)
            template = np.array(with_texts, dtype=np.uint8)
        marker_at, marker_colors = _marker_pixels(target_xy if annotate else None, ny, scale, (x0, y0), width, image_w)
        return cls(
            template=template,
            image_box=(x0, y0, x0 + image_w, y0 + image_h),
            scale=scale,
            border_px=border,
            marker_at=marker_at,
            marker_colors=marker_colors,
            font=font,
            label_y=2 + (line_px if title else 0),
            annotate=annotate,
        )

    def draw(self, indices: npt.NDArray[np.uint8], label: str, quality: int, palette: bytes) -> Image.Image:
        """Return one frame as a "P" image: the upscaled, flipped frame, the marker, the text and any quality flag."""
        canvas = self.template.copy()
        x0, y0, x1, y1 = self.image_box
        flagged = self.annotate and quality != 0
        if flagged:
            b = self.border_px
            canvas[y0 - b : y1 + b, x0 - b : x1 + b] = RED_INDEX
        scale = self.scale
        # Row 0 is the bottom of the picture: flip, then repeat each pixel scale × scale.
        canvas[y0:y1, x0:x1] = np.repeat(np.repeat(indices[::-1], scale, axis=0), scale, axis=1)
        if self.marker_at.size:
            canvas.reshape(-1)[self.marker_at] = self.marker_colors
        image = Image.fromarray(canvas)
        image.putpalette(palette, "RGB")  # "L" becomes "P"; indices are kept as they are
        if self.annotate:
            draw = ImageDraw.Draw(image)
            draw.fontmode = "1"
            draw.text((4, self.label_y), label, fill=WHITE_INDEX, font=self.font)
            if flagged:
                flag = f"Q={quality}"
                draw.text(
                    (canvas.shape[1] - 4 - draw.textlength(flag, font=self.font), self.label_y),
                    flag,
                    fill=RED_INDEX,
                    font=self.font,
                )
        return image


def _marker_pixels(
    target_xy: tuple[float, float] | None, ny: int, scale: int, origin: tuple[int, int], width: int, image_w: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint8]]:
    """Return the flat canvas positions and colours of a ring around the target: white, edged in black."""
    empty = np.empty(0, dtype=np.intp), np.empty(0, dtype=np.uint8)
    if target_xy is None or not all(math.isfinite(v) for v in target_xy):
        return empty
    image_h = ny * scale
    # Pixel centres sit at (i + 0.5) × scale on screen; y counts up from the bottom row.
    cx = (target_xy[0] + 0.5) * scale - 0.5
    cy = (ny - 0.5 - target_xy[1]) * scale - 0.5
    # Two data pixels out: the pixels right next to the target stay in view, where a passing source would show.
    radius = max(8.0, 2.0 * scale)
    layer = Image.new("L", (image_w, image_h), 0)
    draw = ImageDraw.Draw(layer)
    # A white ring with a black rim outside: visible on dark and on bright pixels alike.
    draw.ellipse((cx - radius - 1, cy - radius - 1, cx + radius + 1, cy + radius + 1), outline=BLACK_INDEX, width=2)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=WHITE_INDEX, width=1)
    pixels = np.asarray(layer)
    rows, cols = np.nonzero(pixels)
    if rows.size == 0:
        return empty
    at = (rows + origin[1]) * width + (cols + origin[0])
    return at.astype(np.intp), pixels[rows, cols].astype(np.uint8)


def _gif_delay_ms(fps: float) -> int:
    return max(_MIN_GIF_DELAY_MS, 10 * round(100.0 / fps))


def _encode_gif(images: Iterator[Image.Image], fps: float) -> bytes:
    """Write a looping GIF one frame at a time with Pillow's GIF encoder: one global palette, no local ones.

    Not ``save(save_all=True)``: that holds a copy of every frame until the end (~180 kB a 400 px frame, so
    ~230 MB for a sector) and diffs each against the last, which noisy sky frames never repay. Here only the
    frame being encoded is in memory, and every frame is kept, even one identical to the last.
    """
    delay_ms = _gif_delay_ms(fps)
    buffer = io.BytesIO()
    first = next(images)
    # Logical screen, the palette (the same for every frame) and the NETSCAPE loop-forever extension.
    header, _ = GifImagePlugin.getheader(first, None, {"loop": 0, "duration": delay_ms})
    buffer.write(b"".join(header))
    for image in itertools.chain((first,), images):
        # disposal 1: frames are opaque and cover the whole canvas, nothing to restore between them.
        buffer.write(b"".join(GifImagePlugin.getdata(image, (0, 0), duration=delay_ms, disposal=1)))
    buffer.write(b";")  # GIF trailer
    return buffer.getvalue()


def _encode_mp4(images: Iterator[Image.Image], size: tuple[int, int], fps: float) -> bytes:
    # ffmpeg's mp4 muxer needs a seekable output (moov atom), so it writes a temporary file we read back.
    with tempfile.TemporaryDirectory(prefix="tess-movie-") as directory:
        path = Path(directory) / "movie.mp4"
        writer = _FFMPEG.write_frames(
            str(path),
            size,
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=8,
            macro_block_size=1,  # the canvas is already even-sized; never let ffmpeg rescale it
            ffmpeg_log_level="error",
            # faststart: the index up front, so a browser can play while downloading. veryfast: 2.5x the default
            # preset's speed for ~8% more bytes. bitexact: no encoder version strings, the same bytes every time.
            output_params=["-preset", "veryfast", "-movflags", "+faststart", "-fflags", "+bitexact"],
        )
        writer.send(None)
        try:
            for image in images:
                writer.send(image.convert("RGB").tobytes())
        finally:
            writer.close()
        return path.read_bytes()
