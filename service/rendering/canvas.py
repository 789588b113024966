"""Frame composition for movies and PNGs: limits, stretch to palette indices, and the canvas each frame is drawn on.

A frame becomes palette indices once (a numpy stretch over the whole stack) and is upscaled by repetition onto a
canvas whose fixed parts (background, colorbar, title) are drawn once; each frame then adds only its pixels, the
target marker, its line of text and any quality flag. The indices refer to `colormaps.palette_rgb`'s layout.

Conventions: row 0 of a frame is the bottom of the picture (FITS, ``imshow(origin="lower")``); ``target_xy`` is
(x = column, y = row), 0-based, in the frame's array coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from service.rendering.colormaps import BAD_INDEX, BLACK_INDEX, N_LEVELS, RED_INDEX, WHITE_INDEX

__all__ = ["DEFAULT_SIDE_PX", "MAX_SIDE_PX", "STRETCHES", "Canvas", "Stretch", "robust_limits", "to_palette_indices"]

Stretch = Literal["linear", "sqrt", "log", "asinh"]
STRETCHES: frozenset[str] = frozenset({"linear", "sqrt", "log", "asinh"})

DEFAULT_SIDE_PX = 400  # the frame's longer side when no scale is given
MAX_SIDE_PX = 4096
# Frames stretched at a time: bounds the float32 working copy whatever the movie's length.
_CHUNK_FRAMES = 256
# At most this many pixel values feed the percentiles; more only costs time.
_MAX_LIMIT_SAMPLES = 2_000_000

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


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


def to_palette_indices(
    cube: npt.NDArray[np.floating[Any]], low: float, high: float, stretch: str
) -> npt.NDArray[np.uint8]:
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


def _format_limit(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class Layout:
    """The choices that shape a canvas beyond its frames.

    ``scale`` is the nearest-neighbour upscale factor (None: the longer side becomes ~`DEFAULT_SIDE_PX`);
    ``annotate`` adds the text line, target marker and quality flag; ``colorbar`` a bar labelled with the limits;
    ``even`` rounds the size up to even numbers (H.264 needs them); ``grid_px`` moves the upscaled frame to start
    at a multiple of it: at 8, a video's frame pixels line up with H.264's transform blocks, and at the usual
    scale of 8 each pixel is one flat block, which costs the encoder one coefficient (14-33% fewer bytes than the
    same frames off the grid, at the same CRF).
    """

    scale: int | None = None
    annotate: bool = True
    colorbar: bool = False
    even: bool = False
    grid_px: int = 1


@dataclass(frozen=True)
class Canvas:
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
        frame_shape: tuple[int, ...],
        target_xy: tuple[float, float] | None,
        title: str | None,
        limits: tuple[float, float],
        layout: Layout,
    ) -> Canvas:
        """Lay out a canvas for frames of ``frame_shape`` (ny, nx), the colour bar (if any) labelled with ``limits``."""
        ny, nx = frame_shape
        annotate, colorbar = layout.annotate, layout.colorbar
        scale = layout.scale or max(1, round(DEFAULT_SIDE_PX / max(ny, nx)))
        image_w, image_h = nx * scale, ny * scale
        if max(image_w, image_h) > MAX_SIDE_PX:
            raise ValueError(f"Frames of {image_w}×{image_h} px are too large; lower scale (at most {MAX_SIDE_PX} px).")
        font_px = int(min(16, max(10, round(image_w / 32))))
        font: _Font = ImageFont.load_default(size=font_px)
        line_px = font_px + 4
        title = title if annotate else None
        border = max(2, min(6, scale // 2)) if annotate else 0
        strip_h = line_px * (2 if title else 1) + 4 if annotate else 0
        labels = (_format_limit(limits[1]), _format_limit(limits[0]))
        bar_w = max(10, image_w // 30)
        label_w = math.ceil(max(font.getlength(label) for label in labels))
        panel_w = 6 + bar_w + 4 + label_w + 4 if colorbar else 0
        x0, y0 = _round_up(border, layout.grid_px), _round_up(strip_h + border, layout.grid_px)
        width, height = x0 + image_w + border + panel_w, y0 + image_h + border
        if layout.even:
            width, height = width + width % 2, height + height % 2
        template = np.full((height, width), BLACK_INDEX, dtype=np.uint8)
        texts: list[tuple[tuple[float, float], str, str]] = []  # drawn once here, not on every frame
        if title:
            texts.append(((4, 2), title, "la"))
        if colorbar:
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


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


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
