"""A figure measured in pixels: matplotlib draws the images and line art, Pillow writes the text on top.

Why: on these pictures matplotlib spends most of its time on text and ticks (a text costs about a millisecond to lay
out and draw; every tick builds a line and a text). Laid out by hand in pixels, the line art needs one set of axes
without ticks, and Pillow draws the same DejaVu Sans glyphs some twenty times faster. Still no pyplot: ``Figure``
and the Agg canvas only, safe in worker threads.

Coordinates: x from the left, y from the bottom (matplotlib's way), in pixels, for both line art and text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from service.rendering.encoders import encode_rgb_png

__all__ = ["PixelFigure", "font"]

_DPI = 100
POINTS_PER_PX = 72 / _DPI  # marker sizes and line widths are in points


@functools.cache
def font(size_px: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Return matplotlib's own DejaVu Sans at ``size_px``, so Pillow's text matches the rest of the service's plots."""
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"))
    return ImageFont.truetype(path, size_px)


@dataclass(frozen=True)
class _Text:
    xy: tuple[float, float]
    text: str
    size_px: int
    anchor: str
    color: str
    bold: bool
    vertical: bool
    background: str | None


class PixelFigure:
    """A white figure of ``width_px`` × ``height_px`` whose one set of axes spans it, measured in pixels."""

    def __init__(self, width_px: int, height_px: int) -> None:
        """Create the figure, its Agg canvas and its tickless axes."""
        self.width_px, self.height_px = width_px, height_px
        self.figure = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI)
        self._canvas = FigureCanvasAgg(self.figure)
        self.axes: Axes = self.figure.add_axes((0, 0, 1, 1))
        self.axes.set_axis_off()
        self.axes.set_xlim(0, width_px)
        self.axes.set_ylim(0, height_px)
        self._texts: list[_Text] = []

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        *,
        size_px: int = 11,
        anchor: str = "la",
        color: str = "black",
        bold: bool = False,
        background: str | None = None,
    ) -> None:
        """Queue a line of text at ``xy`` (pixels, y up); ``anchor`` is Pillow's (``"la"``: left, ascender).

        ``background`` fills a rounded box behind the text.
        """
        self._texts.append(_Text(xy, text, size_px, anchor, color, bold, False, background))

    def vertical_text(self, xy: tuple[float, float], text: str, *, size_px: int = 11) -> None:
        """Queue a line of black text reading upwards, centred on ``xy`` (an axis label)."""
        self._texts.append(_Text(xy, text, size_px, "la", "black", False, True, None))

    @staticmethod
    def text_width(text: str, size_px: int = 11, bold: bool = False) -> float:
        """Return the width of ``text`` in pixels."""
        return float(font(size_px, bold).getlength(text))

    def png(self) -> bytes:
        """Draw the line art, write the texts on it, and return an RGB PNG (deterministic bytes)."""
        self._canvas.draw()  # type: ignore[no-untyped-call]
        rgba = np.asarray(self._canvas.buffer_rgba())  # type: ignore[no-untyped-call]
        image = Image.fromarray(np.ascontiguousarray(rgba[..., :3]))
        draw = ImageDraw.Draw(image)
        for item in self._texts:
            x, y = item.xy[0], self.height_px - item.xy[1]
            face = font(item.size_px, item.bold)
            if item.vertical:
                _paste_vertical(image, (x, y), item, face)
                continue
            if item.background is not None:
                left, top, right, bottom = draw.textbbox((x, y), item.text, font=face, anchor=item.anchor)
                draw.rounded_rectangle((left - 3, top - 2, right + 3, bottom + 2), 3, fill=item.background)
            draw.text((x, y), item.text, fill=item.color, font=face, anchor=item.anchor)
        return encode_rgb_png(np.asarray(image))


def _paste_vertical(image: Image.Image, centre: tuple[float, float], item: _Text, face: ImageFont.FreeTypeFont) -> None:
    """Write ``item`` reading upwards, centred on ``centre`` (Pillow's coordinates, y down)."""
    left, top, right, bottom = face.getbbox(item.text)
    mask = Image.new("L", (int(right - left) + 2, int(bottom - top) + 2), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), item.text, fill=255, font=face)
    mask = mask.transpose(Image.Transpose.ROTATE_90)
    corner = (round(centre[0] - mask.width / 2), round(centre[1] - mask.height / 2))
    image.paste(Image.new("RGB", mask.size, item.color), corner, mask)
