"""The pixel-level diagnosis of an event window as a picture: reference, in-event and difference images side by side.

Pure functions: arrays in, (PNG bytes, media type) out. Drawn on a `PixelFigure`: everything is placed in pixels
here, images and line art by matplotlib (``Figure`` + Agg), text by Pillow, which keeps a picture near 50 ms.

Conventions, as in `canvas`: row 0 is the bottom of an image (``origin="lower"``); positions are (column, row), 0-based,
in cutout pixels, and a pixel's centre sits on whole numbers. The per-pixel light curves (`render_pixels_png`) live in
`pixel_grid` and are re-exported here, so the diagnosis service finds both pictures in one place.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib import patheffects
from matplotlib.collections import LineCollection
from matplotlib.colors import Colormap, Normalize, PowerNorm
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from service.rendering.canvas import robust_limits
from service.rendering.pixel_figure import PixelFigure
from service.rendering.pixel_grid import BoolArray, FloatArray, PixelCurves, render_pixels_png
from service.rendering.plots import PNG_MEDIA_TYPE

__all__ = ["DiagnosisPicture", "Mark", "PixelCurves", "render_diagnosis_png", "render_pixels_png"]

WIDTH_PX, HEIGHT_PX = 1200, 450
# Fixed margins, in pixels: title and verdict above; tick labels, axis label and legend below; row labels left.
_TOP_PX, _BOTTOM_PX, _LEFT_PX, _RIGHT_PX = 86, 72, 50, 6
# Each panel's slot holds the image, a gap, its colour bar and the bar's tick labels.
_BAR_GAP_PX, _BAR_WIDTH_PX, _BAR_LABELS_PX, _SLOT_GAP_PX = 6, 12, 46, 14
_TICK_PX = 4
_VERDICT_LINES, _VERDICT_CHARS = 2, 170

IMAGE_CMAP = "viridis"
DIFFERENCE_CMAP = "RdBu_r"  # red where the reference is brighter: where the source dimmed
BAD_COLOR = "#8c8c8c"  # NaN pixels: a mid grey, in neither colormap
TARGET_COLOR = "#ffffff"
APERTURE_COLOR = "#ffffff"
CENTROID_COLOR = "#ff3bff"
TRACK_COLOR = "#39ff14"
KNOWN_COLOR = "#00e5ff"
MATCHED_COLOR = "#ffd700"
# Every overlay is edged in black, so it shows on dark, bright, red, blue and white pixels alike.
_HALO = [patheffects.withStroke(linewidth=3.2, foreground="black")]
# Display ranges: the images' percentiles (a few hot pixels cannot set them), and |difference|'s.
_DIFF_PCT = 99.8
_IMAGE_GAMMA = 0.5  # a square-root stretch: the target does not drown its fainter neighbours

_STYLES: dict[str, dict[str, Any]] = {
    "aperture": {"color": APERTURE_COLOR, "linewidth": 1.3},
    "target": {"marker": "+", "color": TARGET_COLOR, "markersize": 11, "mew": 1.7},
    "difference centroid": {"marker": "x", "color": CENTROID_COLOR, "markersize": 8, "mew": 1.7},
    "track": {"marker": "o", "color": TRACK_COLOR, "markersize": 4.5, "markeredgecolor": "black", "linewidth": 1.2},
    "known object": {"marker": "o", "markerfacecolor": "none", "markeredgecolor": KNOWN_COLOR, "mew": 1.6},
    "matched known object": {"marker": "o", "markerfacecolor": "none", "markeredgecolor": MATCHED_COLOR, "mew": 2.6},
}
_KNOWN_SIZE, _MATCHED_SIZE, _EDGE_ARROW_SIZE = 14.0, 20.0, 10.0


@dataclass(frozen=True)
class Mark:
    """A labelled point to mark on the images: a known object's predicted position, (column, row) in cutout pixels."""

    label: str
    xy: tuple[float, float]
    matched: bool = False  # the object matches the detected track: drawn emphasised


@dataclass(frozen=True)
class DiagnosisPicture:
    """What the diagnosis picture shows: three (ny, nx) images, the target, its aperture and what was found."""

    reference: FloatArray  # mean of the reference frames, e-/s
    in_event: FloatArray  # mean of the in-event frames, e-/s
    difference: FloatArray  # reference − in-event: positive where the source dimmed
    target_xy: tuple[float, float]
    aperture: BoolArray
    centroid_xy: tuple[float, float] | None  # the difference image's centroid
    track: tuple[tuple[float, float, float], ...] | None  # (BTJD, column, row) of points on a moving source's track
    known: tuple[Mark, ...]
    title: str
    verdict: str  # a line under the title


@dataclass(frozen=True)
class _Panel:
    """Where one image goes on the figure: its lower left corner and the size of one cutout pixel, in pixels."""

    x0: float
    y0: float
    pixel_px: float
    shape: tuple[int, int]  # (ny, nx)

    @property
    def width(self) -> float:
        return self.shape[1] * self.pixel_px

    @property
    def height(self) -> float:
        return self.shape[0] * self.pixel_px

    def to_px(self, column: npt.ArrayLike, row: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Return figure pixels for cutout (column, row): pixel centres at whole numbers."""
        x = self.x0 + (np.asarray(column, dtype=float) + 0.5) * self.pixel_px
        y = self.y0 + (np.asarray(row, dtype=float) + 0.5) * self.pixel_px
        return x, y

    def contains(self, column: float, row: float) -> bool:
        ny, nx = self.shape
        return -0.5 <= column <= nx - 0.5 and -0.5 <= row <= ny - 0.5


def render_diagnosis_png(picture: DiagnosisPicture) -> tuple[bytes, str]:
    """Draw the reference mean, in-event mean and difference image side by side, each with its colour bar; PNG.

    The reference and in-event images share one square-root stretch, so they compare by eye; the difference is
    drawn on a diverging map symmetric about 0 (white). The target (+), the aperture's outline, the difference
    centroid (×), a moving source's track (its points, and the line fitted through them) and known objects (circles,
    matched ones bigger and gold; one off the image as a triangle on the edge pointing its way) are drawn on every
    panel, the known objects' labels on the difference. NaN pixels are grey. 1200×450 px; deterministic bytes.

    Raises ValueError when the images or the aperture do not share one (ny, nx) shape.
    """
    reference, in_event, difference, aperture = _checked_images(picture)
    figure = PixelFigure(WIDTH_PX, HEIGHT_PX)
    _draw_heading(figure, picture.title, picture.verdict)
    low, high = robust_limits(np.concatenate([reference.ravel(), in_event.ravel()]))
    image_norm = PowerNorm(_IMAGE_GAMMA, vmin=low, vmax=high, clip=True)
    limit = _symmetric_limit(difference)
    panels = (
        ("Reference mean (e⁻/s)", reference, _cmap(IMAGE_CMAP), image_norm),
        ("In-event mean (e⁻/s)", in_event, _cmap(IMAGE_CMAP), image_norm),
        ("Difference, reference − in-event (e⁻/s)", difference, _cmap(DIFFERENCE_CMAP), Normalize(-limit, limit)),
    )
    shown: set[str] = set()
    for index, (name, image, cmap, norm) in enumerate(panels):
        panel = _panel(index, reference.shape)
        figure.axes.imshow(
            image,
            cmap=cmap,
            norm=norm,
            origin="lower",
            interpolation="nearest",
            aspect="auto",
            extent=(panel.x0, panel.x0 + panel.width, panel.y0, panel.y0 + panel.height),
        )
        _draw_frame(figure, panel, name, row_labels=index == 0)
        _draw_colour_bar(figure, panel, cmap, norm)
        shown |= _draw_overlays(figure, panel, picture, aperture, labels=index == 2)
    _draw_legend(figure, [name for name in _STYLES if name in shown], _track_label(picture.track))
    return figure.png(), PNG_MEDIA_TYPE


def _checked_images(picture: DiagnosisPicture) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """Return the three images as float arrays and the aperture as bools; raise ValueError unless shapes agree."""
    reference = np.asarray(picture.reference, dtype=float)
    if reference.ndim != 2 or reference.size == 0:
        raise ValueError(f"reference must be a non-empty (ny, nx) image, not shape {reference.shape}.")
    arrays = {"in_event": picture.in_event, "difference": picture.difference, "aperture": picture.aperture}
    for name, array in arrays.items():
        shape = np.shape(array)
        if shape != reference.shape:
            raise ValueError(f"{name} has shape {shape}, the reference {reference.shape}: they must be the same.")
    for name, xy in (("target_xy", picture.target_xy), ("centroid_xy", picture.centroid_xy)):
        if xy is not None and len(xy) != 2:
            raise ValueError(f"{name} must be (column, row), not {xy!r}.")
    if picture.track is not None and any(len(point) != 3 for point in picture.track):
        raise ValueError("Each track point must be (BTJD, column, row).")
    return (
        reference,
        np.asarray(picture.in_event, dtype=float),
        np.asarray(picture.difference, dtype=float),
        np.asarray(picture.aperture, dtype=bool),
    )


def _cmap(name: str) -> Colormap:
    return matplotlib.colormaps[name].with_extremes(bad=BAD_COLOR)


def _symmetric_limit(difference: FloatArray) -> float:
    """Return the difference panel's half-range: a high percentile of |difference|, so 0 sits in the map's centre."""
    magnitudes = np.abs(difference[np.isfinite(difference)])
    if magnitudes.size == 0:
        return 1.0
    limit = float(np.percentile(magnitudes, _DIFF_PCT))
    if limit <= 0:
        limit = float(magnitudes.max())
    return limit if limit > 0 else 1.0


def _draw_heading(figure: PixelFigure, title: str, verdict: str) -> None:
    figure.text((WIDTH_PX / 2, HEIGHT_PX - 8), title, size_px=15, anchor="ma", bold=True)
    lines = textwrap.wrap(verdict, _VERDICT_CHARS, max_lines=_VERDICT_LINES, placeholder=" …")
    for number, line in enumerate(lines):
        figure.text((WIDTH_PX / 2, HEIGHT_PX - 30 - 15 * number), line, size_px=12, anchor="ma")


def _panel(index: int, shape: tuple[int, int]) -> _Panel:
    """Return panel ``index``'s place: the image fitted into its slot with square pixels, right-aligned to its bar."""
    ny, nx = shape
    slot_px = (WIDTH_PX - _LEFT_PX - _RIGHT_PX) / 3
    room_w = slot_px - _BAR_GAP_PX - _BAR_WIDTH_PX - _BAR_LABELS_PX - _SLOT_GAP_PX
    room_h = HEIGHT_PX - _TOP_PX - _BOTTOM_PX
    pixel_px = min(room_w / nx, room_h / ny)
    x0 = _LEFT_PX + index * slot_px + (room_w - nx * pixel_px)
    y0 = _BOTTOM_PX + (room_h - ny * pixel_px) / 2
    return _Panel(x0, y0, pixel_px, shape)


def _draw_frame(figure: PixelFigure, panel: _Panel, name: str, *, row_labels: bool) -> None:
    """Draw the panel's border, its name above, column numbers below and (on the first) row numbers to the left."""
    axes = figure.axes
    axes.add_patch(Rectangle((panel.x0, panel.y0), panel.width, panel.height, fill=False, linewidth=0.8))
    top = panel.y0 + panel.height
    figure.text((panel.x0 + panel.width / 2, top + 6), name, size_px=12, anchor="md")
    ny, nx = panel.shape
    columns = _whole_ticks(nx)
    x, _ = panel.to_px(columns, 0)
    ticks = [((xi, panel.y0), (xi, panel.y0 - _TICK_PX)) for xi in x]
    for xi, column in zip(x, columns, strict=True):
        figure.text((xi, panel.y0 - _TICK_PX - 2), str(column), size_px=10, anchor="ma")
    figure.text((panel.x0 + panel.width / 2, panel.y0 - 20), "column", size_px=11, anchor="ma")
    if row_labels:
        rows = _whole_ticks(ny)
        _, y = panel.to_px(0, rows)
        ticks += [((panel.x0, yi), (panel.x0 - _TICK_PX, yi)) for yi in y]
        for yi, row in zip(y, rows, strict=True):
            figure.text((panel.x0 - _TICK_PX - 2, yi), str(row), size_px=10, anchor="rm")
        figure.vertical_text((panel.x0 - 34, panel.y0 + panel.height / 2), "row", size_px=11)
    axes.add_collection(LineCollection(ticks, colors="black", linewidths=0.8))


def _whole_ticks(count: int) -> list[int]:
    """Return up to six whole-number pixel indices in 0..count-1 for tick labels."""
    values = MaxNLocator(6, integer=True).tick_values(0, max(count - 1, 1))
    return [int(v) for v in values if 0 <= v <= count - 1]


def _draw_colour_bar(figure: PixelFigure, panel: _Panel, cmap: Colormap, norm: Normalize) -> None:
    """Draw the panel's colour bar to its right, with ticks labelled at round values (through ``norm``'s stretch)."""
    x0 = panel.x0 + panel.width + _BAR_GAP_PX
    y0, height = panel.y0, panel.height
    levels = np.linspace(0.0, 1.0, 256)[:, np.newaxis]
    figure.axes.imshow(
        levels,
        cmap=cmap,
        vmin=0,
        vmax=1,
        origin="lower",
        aspect="auto",
        extent=(x0, x0 + _BAR_WIDTH_PX, y0, y0 + height),
    )
    figure.axes.add_patch(Rectangle((x0, y0), _BAR_WIDTH_PX, height, fill=False, linewidth=0.8))
    low, high = float(norm.vmin or 0.0), float(norm.vmax or 1.0)
    ticks = []
    for value in MaxNLocator(6).tick_values(low, high):
        if not low - 1e-9 * abs(high - low) <= value <= high + 1e-9 * abs(high - low):
            continue
        y = y0 + height * float(np.clip(norm(value), 0.0, 1.0))
        ticks.append(((x0 + _BAR_WIDTH_PX, y), (x0 + _BAR_WIDTH_PX + _TICK_PX, y)))
        figure.text((x0 + _BAR_WIDTH_PX + _TICK_PX + 2, y), f"{value:g}", size_px=10, anchor="lm")
    figure.axes.add_collection(LineCollection(ticks, colors="black", linewidths=0.8))


def _draw_overlays(
    figure: PixelFigure, panel: _Panel, picture: DiagnosisPicture, aperture: BoolArray, *, labels: bool
) -> set[str]:
    """Draw the aperture, track, centroid, target and known objects on ``panel``; return what was drawn."""
    axes = figure.axes
    clip = Rectangle((panel.x0, panel.y0), panel.width, panel.height, transform=axes.transData)
    artists: list[Any] = []
    shown: set[str] = set()
    segments = _outline_segments(aperture)
    if segments.size:
        x, y = panel.to_px(segments[..., 0], segments[..., 1])
        artists.append(LineCollection(list(np.stack([x, y], -1)), path_effects=_HALO, zorder=3, **_aperture_style()))
        axes.add_collection(artists[-1])
        shown.add("aperture")
    if picture.track and (track := _track_artists(figure, panel, picture.track)):
        artists += track
        shown.add("track")
    for name, xy in (("difference centroid", picture.centroid_xy), ("target", picture.target_xy)):
        if xy is not None and all(math.isfinite(v) for v in xy):
            artists += axes.plot(*panel.to_px(*xy), linestyle="none", path_effects=_HALO, zorder=6, **_STYLES[name])
            shown.add(name)
    for mark in picture.known:
        if all(math.isfinite(v) for v in mark.xy):
            drawn = _mark_artists(figure, panel, mark, label=labels)
            # An off-image object's triangle sits on the edge and may stick out: it is not clipped.
            artists += drawn if panel.contains(*mark.xy) else []
            shown.add("matched known object" if mark.matched else "known object")
    for artist in artists:
        artist.set_clip_path(clip)
    return shown


def _aperture_style() -> dict[str, Any]:
    style = _STYLES["aperture"]
    return {"colors": style["color"], "linewidths": style["linewidth"]}


def _outline_segments(aperture: BoolArray) -> npt.NDArray[np.float64]:
    """Return the aperture's outline as (m, 2, 2) segments on pixel edges, in cutout (column, row)."""
    padded = np.pad(aperture, 1)
    # A horizontal edge below row y where the pixel and the one under it differ; likewise vertical edges.
    rows, cols = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])
    horizontal = np.stack([np.stack([cols - 0.5, rows - 0.5], -1), np.stack([cols + 0.5, rows - 0.5], -1)], 1)
    rows, cols = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])
    vertical = np.stack([np.stack([cols - 0.5, rows - 0.5], -1), np.stack([cols - 0.5, rows + 0.5], -1)], 1)
    return np.concatenate([horizontal, vertical]).astype(np.float64)


def _track_points(track: tuple[tuple[float, float, float], ...]) -> FloatArray:
    """Return the track's points with a finite position, (m, 3) as (BTJD, column, row), in time order."""
    points = np.asarray(track, dtype=float).reshape(-1, 3)
    points = points[np.isfinite(points[:, 1:]).all(axis=1)]
    ordered: FloatArray = points[np.argsort(points[:, 0], kind="stable")]
    return ordered


def _track_label(track: tuple[tuple[float, float, float], ...] | None) -> str:
    times = _track_points(track)[:, 0] if track else np.empty(0)
    times = times[np.isfinite(times)]
    return f"track (BTJD {times.min():.2f}–{times.max():.2f})" if times.size > 1 else "track"


def _track_artists(figure: PixelFigure, panel: _Panel, track: tuple[tuple[float, float, float], ...]) -> list[Any]:
    """Draw the track's points joined in time order and, dashed, the straight line fitted through them."""
    points = _track_points(track)
    if points.shape[0] == 0:
        return []
    x, y = panel.to_px(points[:, 1], points[:, 2])
    artists: list[Any] = []
    xy = np.stack([x, y], -1)
    centre = xy.mean(axis=0)
    if xy.shape[0] > 1 and np.ptp(xy, axis=0).max() > 0:
        # The principal axis of the points: a line through them whatever its direction, vertical included.
        direction = np.linalg.svd(xy - centre)[2][0]
        reach = float(np.hypot(WIDTH_PX, HEIGHT_PX))  # far enough either way to cross the panel, which clips it
        ends = centre + np.outer([-reach, reach], direction)
        artists += figure.axes.plot(
            ends[:, 0], ends[:, 1], "--", color=TRACK_COLOR, linewidth=1.0, path_effects=_HALO, zorder=4
        )
    artists += figure.axes.plot(x, y, path_effects=_HALO, zorder=4, **_STYLES["track"])
    return artists


def _mark_artists(figure: PixelFigure, panel: _Panel, mark: Mark, *, label: bool) -> list[Any]:
    """Draw a known object: a circle on the image, or a triangle on the edge pointing to where it is off the image."""
    column, row = mark.xy
    ny, nx = panel.shape
    name = "matched known object" if mark.matched else "known object"
    style = dict(_STYLES[name])
    color = style["markeredgecolor"]
    inside = panel.contains(column, row)
    if inside:
        at = (column, row)
        style["markersize"] = _MATCHED_SIZE if mark.matched else _KNOWN_SIZE
    else:
        # Clamp onto the image, just inside its edge, and point the way along the larger overshoot.
        at = (min(max(column, 0.0), nx - 1.0), min(max(row, 0.0), ny - 1.0))
        dx, dy = column - at[0], row - at[1]
        style["marker"] = (">" if dx > 0 else "<") if abs(dx) >= abs(dy) else ("^" if dy > 0 else "v")
        style |= {"markerfacecolor": color, "markersize": _EDGE_ARROW_SIZE, "mew": 1.0}
    x, y = panel.to_px(*at)
    artists = figure.axes.plot(x, y, linestyle="none", path_effects=_HALO, zorder=7 if mark.matched else 6, **style)
    if label:
        text = mark.label if inside else f"{mark.label} (off image)"
        # Right of the point, or left of it in the image's right half, so the label stays on the panel.
        left_half = at[0] < nx / 2
        offset = 12 if mark.matched else 9
        figure.text(
            (float(x) + (offset if left_half else -offset), float(y) + offset),
            text,
            size_px=10,
            anchor="ld" if left_half else "rd",
            bold=mark.matched,
            background=color,
        )
    return artists


def _draw_legend(figure: PixelFigure, names: list[str], track_label: str) -> None:
    """Draw one row of legend entries, a sample of each overlay and its name, centred under the panels."""
    labels = [track_label if name == "track" else name for name in names]
    sample_px, gap_px, y = 24, 22, 14.0
    widths = [sample_px + 5 + figure.text_width(label, 11) for label in labels]
    x = (WIDTH_PX - sum(widths) - gap_px * (len(widths) - 1)) / 2
    for name, label, width in zip(names, labels, widths, strict=True):
        middle = x + sample_px / 2
        if name == "aperture":
            figure.axes.plot([x, x + sample_px], [y, y], path_effects=_HALO, **_STYLES[name])
        elif name == "track":
            figure.axes.plot([x, middle, x + sample_px], [y, y, y], path_effects=_HALO, **_STYLES[name])
        else:
            style = dict(_STYLES[name])
            style.setdefault("markersize", 10.0)
            figure.axes.plot([middle], [y], linestyle="none", path_effects=_HALO, **style)
        figure.text((x + sample_px + 5, y), label, size_px=11, anchor="lm")
        x += width + gap_px
