"""Per-pixel light curves around a target as a grid of small plots, laid out as on the sky (lightkurve's plot_pixels).

Pure functions: arrays in, (PNG bytes, media type) out. The
grid is drawn on one `PixelFigure`, cell (row i, column j) spanning [j, j+1] × [i, i+1] in grid units, so row 0 is at
the bottom: 121 small axes with ticks would cost ten times as much to build and draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

from service.rendering.pixel_figure import PixelFigure
from service.rendering.plots import HIGHLIGHT_SHADE, PNG_MEDIA_TYPE, POINT_COLOR

__all__ = ["MAX_GRID_SIDE", "BoolArray", "FloatArray", "PixelCurves", "render_pixels_png"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAX_GRID_SIDE = 15  # pixels a side: radius 7; beyond that the cells are too small to read
# Cell size: the grid is about 840 px a side, within these bounds, so k = 11 gives ~76 px cells.
_GRID_PX, _MIN_CELL_PX, _MAX_CELL_PX = 840, 76, 160
_LEFT_PX, _RIGHT_PX, _TOP_PX, _BOTTOM_PX = 72, 24, 50, 96
# Inside a cell, in cell units: room at the top for the range label, a little at the sides and bottom.
_PAD_X, _PAD_BOTTOM, _PAD_TOP = 0.05, 0.08, 0.2
_FLAG_TICK = 0.06  # height of the flagged-frame ticks at the bottom of a cell

CELL_COLOR = "#f4f6f8"
APERTURE_CELL_COLOR = "#d9efcf"  # pale green: the window is shaded in the light curves' orange
NO_DATA_CELL_COLOR = "#c8c8c8"
FLAG_COLOR = "#d62728"
TARGET_MARK_COLOR = "#d62728"


@dataclass(frozen=True)
class PixelCurves:
    """The light curves of the k × k pixels around a target, row 0 at the bottom, and what to mark on them."""

    time_btjd: FloatArray  # (n,)
    flux: FloatArray  # (n, k, k), e-/s
    origin_xy: tuple[int, int]  # (column, row) of flux[:, 0, 0] in the cutout
    aperture: BoolArray  # (k, k)
    target_xy: tuple[float, float]  # in cutout pixels
    window: tuple[float, float]  # BTJD span to shade
    flagged: BoolArray  # (n,) frames with a flagged QUALITY: left out, marked by a tick
    title: str


@dataclass(frozen=True)
class _Grid:
    """The grid's lower left corner and cell size, in figure pixels; cell (i, j) spans [j, j+1] × [i, i+1]."""

    x0: float
    y0: float
    cell_px: float
    k: int

    def to_px(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Return figure pixels for grid units (x across, y up)."""
        return self.x0 + np.asarray(x, dtype=float) * self.cell_px, self.y0 + np.asarray(y, dtype=float) * self.cell_px

    def point(self, x: float, y: float) -> tuple[float, float]:
        """Return figure pixels for one point in grid units."""
        return self.x0 + x * self.cell_px, self.y0 + y * self.cell_px


@dataclass(frozen=True)
class _Scaled:
    """The curves in grid units: x (n,) across a cell, y (n, k, k) up a cell, and each pixel's range (low, high)."""

    x: FloatArray
    y: FloatArray
    low: FloatArray
    high: FloatArray
    span_btjd: tuple[float, float]


def render_pixels_png(curves: PixelCurves) -> tuple[bytes, str]:
    """Draw one small light curve per pixel, laid out as on the sky image (row 0 at the bottom); return PNG bytes.

    Each curve is scaled to its own pixel's range (printed in the cell in e-/s), so a faint neighbour's dip shows as
    clearly as the target's; the printed range says which changes are large. Aperture pixels have a green
    background, the window is shaded in every cell, flagged frames are gaps marked by red ticks, and triangles on the
    grid's top and right edges point at the target's column and row. The size grows with k (~930 px for k = 11).

    Raises ValueError on inconsistent shapes, k > `MAX_GRID_SIDE`, no frames, or a window that ends before it starts.
    """
    time, flux, aperture, flagged = _checked(curves)
    k = flux.shape[1]
    cell_px = min(_MAX_CELL_PX, max(_MIN_CELL_PX, round(_GRID_PX / k)))
    figure = PixelFigure(_LEFT_PX + k * cell_px + _RIGHT_PX, _TOP_PX + k * cell_px + _BOTTOM_PX)
    grid = _Grid(_LEFT_PX, _BOTTOM_PX, cell_px, k)
    figure.text((figure.width_px / 2, figure.height_px - 10), curves.title, size_px=15, anchor="ma", bold=True)
    scaled = _scale(time, flux, flagged)
    _draw_cells(figure, grid, aperture, np.isfinite(scaled.low))
    _draw_window(figure, grid, scaled.span_btjd, curves.window)
    _draw_curves(figure, grid, scaled, flagged)
    _draw_ranges(figure, grid, scaled)
    _label_edges(figure, grid, curves.origin_xy, curves.target_xy)
    start, end = scaled.span_btjd
    notes = (
        f"Time runs left to right in every cell: BTJD {start:.2f} – {end:.2f}; shaded: the window, BTJD "
        f"{curves.window[0]:.2f} – {curves.window[1]:.2f}.",
        "Each curve spans its own pixel's range (the number: high − low, e⁻/s). Green: aperture pixels. "
        f"Red ticks: flagged frames ({int(flagged.sum())}), left out.",
    )
    for number, note in enumerate(notes):
        figure.text((_LEFT_PX, 28 - 16 * number), note, size_px=11, anchor="ls")
    return figure.png(), PNG_MEDIA_TYPE


def _checked(curves: PixelCurves) -> tuple[FloatArray, FloatArray, BoolArray, BoolArray]:
    """Return time, flux, aperture and flagged as arrays; raise ValueError unless their shapes agree."""
    time = np.asarray(curves.time_btjd, dtype=float)
    flux = np.asarray(curves.flux, dtype=float)
    if time.ndim != 1 or time.size == 0:
        raise ValueError(f"time_btjd must be a non-empty 1-D array, not shape {time.shape}.")
    if flux.ndim != 3 or flux.shape[1] != flux.shape[2] or flux.shape[1] == 0:
        raise ValueError(f"flux must be an (n, k, k) array, not shape {flux.shape}.")
    if flux.shape[0] != time.size:
        raise ValueError(f"flux has {flux.shape[0]} frames and time_btjd {time.size}: they must be the same.")
    k = flux.shape[1]
    if k > MAX_GRID_SIDE:
        raise ValueError(f"At most {MAX_GRID_SIDE}×{MAX_GRID_SIDE} pixels can be drawn, not {k}×{k}.")
    if np.shape(curves.aperture) != (k, k):
        raise ValueError(f"aperture has shape {np.shape(curves.aperture)}; the flux is {k}×{k} pixels.")
    if np.shape(curves.flagged) != (time.size,):
        raise ValueError(f"flagged has shape {np.shape(curves.flagged)}; expected one flag per frame ({time.size},).")
    start, end = curves.window
    if not (math.isfinite(start) and math.isfinite(end) and start <= end):
        raise ValueError(f"window must be two finite BTJD times, start before end, not {curves.window!r}.")
    return time, flux, np.asarray(curves.aperture, dtype=bool), np.asarray(curves.flagged, dtype=bool)


def _scale(time: FloatArray, flux: FloatArray, flagged: BoolArray) -> _Scaled:
    """Map time across each cell and each pixel's unflagged finite flux up its cell; flagged frames become NaN."""
    finite_time = time[np.isfinite(time)]
    start, end = (float(finite_time.min()), float(finite_time.max())) if finite_time.size else (0.0, 1.0)
    if end > start:
        x = _PAD_X + (1 - 2 * _PAD_X) * (time - start) / (end - start)
    else:
        x = np.full(time.shape, 0.5)
    good = np.isfinite(flux) & ~flagged[:, np.newaxis, np.newaxis] & np.isfinite(x)[:, np.newaxis, np.newaxis]
    # min/max over good frames only, without all-NaN warnings: bad values become ±inf, and an empty pixel stays so.
    low = np.where(good, flux, np.inf).min(axis=0)
    high = np.where(good, flux, -np.inf).max(axis=0)
    empty = ~good.any(axis=0)
    low[empty], high[empty] = np.nan, np.nan
    span = high - low
    height = 1 - _PAD_BOTTOM - _PAD_TOP
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(span > 0, (flux - low) / np.where(span > 0, span, 1.0), 0.5)
    y = np.where(good, _PAD_BOTTOM + height * fraction, np.nan)
    return _Scaled(x, y, low, high, (start, end))


def _draw_cells(figure: PixelFigure, grid: _Grid, aperture: BoolArray, has_data: BoolArray) -> None:
    """Fill each cell with its background (aperture, plain, no data) and separate the cells with white lines."""
    k = grid.k
    kinds = np.where(has_data, aperture.astype(int), 2)
    cmap = ListedColormap([CELL_COLOR, APERTURE_CELL_COLOR, NO_DATA_CELL_COLOR])
    x0, y0 = grid.point(0, 0)
    x1, y1 = grid.point(k, k)
    figure.axes.imshow(
        kinds,
        cmap=cmap,
        vmin=0,
        vmax=2,
        origin="lower",
        extent=(x0, x1, y0, y1),
        interpolation="nearest",
        aspect="auto",
    )
    edges = [grid.point(e, e) for e in range(1, k)]
    lines = [((x, y0), (x, y1)) for x, _ in edges] + [((x0, y), (x1, y)) for _, y in edges]
    figure.axes.add_collection(LineCollection(lines, colors="white", linewidths=2.5))
    figure.axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, linewidth=0.8))


def _draw_window(figure: PixelFigure, grid: _Grid, span_btjd: tuple[float, float], window: tuple[float, float]) -> None:
    """Shade the window's part of the time span in every cell."""
    start, end = span_btjd
    if end <= start:
        return
    left, right = (_PAD_X + (1 - 2 * _PAD_X) * (np.clip(t, start, end) - start) / (end - start) for t in window)
    if right <= left:
        return
    j, i = (a.ravel() for a in np.meshgrid(np.arange(grid.k), np.arange(grid.k)))
    bottom, top = i + _PAD_BOTTOM, i + 1 - _PAD_TOP
    corners = [(j + left, bottom), (j + right, bottom), (j + right, top), (j + left, top)]
    boxes = np.stack([np.stack(grid.to_px(x, y), -1) for x, y in corners], axis=1)
    figure.axes.add_collection(PolyCollection(list(boxes), facecolors=HIGHLIGHT_SHADE, edgecolors="none", alpha=0.7))


def _draw_curves(figure: PixelFigure, grid: _Grid, scaled: _Scaled, flagged: BoolArray) -> None:
    """Draw every pixel's curve as one line, cells separated by NaN, and tick the flagged frames in each cell."""
    n, k = scaled.y.shape[0], grid.k
    j, i = np.meshgrid(np.arange(k), np.arange(k))
    # (k*k, n + 1): each cell's points then a NaN, which breaks the line between cells.
    xs = np.full((k * k, n + 1), np.nan)
    ys = np.full((k * k, n + 1), np.nan)
    xs[:, :n] = j.reshape(-1, 1) + scaled.x
    ys[:, :n] = i.reshape(-1, 1) + scaled.y.reshape(n, k * k).T
    figure.axes.plot(*grid.to_px(xs.ravel(), ys.ravel()), color=POINT_COLOR, linewidth=0.8)
    flag_x = scaled.x[flagged & np.isfinite(scaled.x)]
    if flag_x.size:
        cx = (j.reshape(-1, 1) + flag_x).ravel()
        cy = np.repeat(i.reshape(-1), flag_x.size).astype(float)
        low, high = np.stack(grid.to_px(cx, cy + 0.01), -1), np.stack(grid.to_px(cx, cy + 0.01 + _FLAG_TICK), -1)
        figure.axes.add_collection(LineCollection(list(np.stack([low, high], 1)), colors=FLAG_COLOR, linewidths=0.8))


def _draw_ranges(figure: PixelFigure, grid: _Grid, scaled: _Scaled) -> None:
    """Print each pixel's range (high − low, e-/s) in its cell's top left corner, or "no data"."""
    size_px = 9 if grid.cell_px < 100 else 10
    for i in range(grid.k):
        for j in range(grid.k):
            low, high = float(scaled.low[i, j]), float(scaled.high[i, j])
            text = f"{high - low:.3g}" if math.isfinite(low) else "no data"
            x, y = grid.point(j, i + 1)
            figure.text((x + 3, y - 2), text, size_px=size_px, anchor="la", color="#444444")


def _label_edges(figure: PixelFigure, grid: _Grid, origin_xy: tuple[int, int], target_xy: tuple[float, float]) -> None:
    """Label the columns and rows on the grid's edges; point triangles at the target's column and row."""
    k = grid.k
    x0, y0 = grid.point(0, 0)
    x1, y1 = grid.point(k, k)
    ticks: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for index in range(k):
        x, y = grid.point(index + 0.5, index + 0.5)
        ticks += [((x, y0), (x, y0 - 4)), ((x0, y), (x0 - 4, y))]
        figure.text((x, y0 - 6), str(origin_xy[0] + index), size_px=11, anchor="ma")
        figure.text((x0 - 6, y), str(origin_xy[1] + index), size_px=11, anchor="rm")
    figure.axes.add_collection(LineCollection(ticks, colors="black", linewidths=0.8))
    figure.text(((x0 + x1) / 2, y0 - 24), "column (cutout pixels)", size_px=12, anchor="ma")
    figure.vertical_text((x0 - 44, (y0 + y1) / 2), "row (cutout pixels)", size_px=12)
    # On the top and right edges, where no numbers are: a triangle over the target's column, one beside its row.
    gx, gy = grid.point(target_xy[0] - origin_xy[0] + 0.5, target_xy[1] - origin_xy[1] + 0.5)
    style: dict[str, Any] = {"color": TARGET_MARK_COLOR, "markersize": 9, "linestyle": "none"}
    if math.isfinite(gx) and x0 <= gx <= x1:
        figure.axes.plot([gx], [y1 + 7], marker="v", **style)
    if math.isfinite(gy) and y0 <= gy <= y1:
        figure.axes.plot([x1 + 7], [gy], marker="<", **style)
