"""Light-curve plots: pure functions, DV columns in, (PNG bytes, media type) out.

matplotlib only through ``Figure`` and the Agg canvas, never pyplot, so figures can be drawn in worker threads.
Margins are fixed in pixels rather than computed by a layout engine: cheaper, and the same for every plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from service.rendering.encoders import encode_rgb_png

PNG_MEDIA_TYPE = "image/png"

POINT_COLOR = "#1f3b73"
MODEL_COLOR = "#d62728"
HIGHLIGHT_COLOR = "#ff7f0e"
HIGHLIGHT_SHADE = "#ffd27f"

# Margins around the axes, in pixels: room for tick labels, axis labels and the title.
_LEFT_PX, _RIGHT_PX, _BOTTOM_PX, _TOP_PX = 92, 30, 55, 36
# Consecutive samples further apart than this many median cadences are a gap: the model line breaks there.
_GAP_CADENCES = 5.0
# Y range: these flux percentiles (and the whole model), so a few outliers cannot flatten the light curve.
_Y_LOW_PCT, _Y_HIGH_PCT = 0.1, 99.9

_FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PlotSeries:
    """The columns a plot draws, one value per cadence: TIME (BTJD), PHASE (days), detrended flux, the model."""

    time_btjd: npt.ArrayLike
    phase_days: npt.ArrayLike
    flux: npt.ArrayLike
    model: npt.ArrayLike | None = None


@dataclass(frozen=True)
class PlotView:
    """What the plot shows: its horizontal axis, the rows of a BTJD window, a BTJD window to highlight."""

    x: Literal["phase", "time"] = "phase"
    start_btjd: float | None = None
    end_btjd: float | None = None
    highlight_btjd: tuple[float, float] | None = None


@dataclass(frozen=True)
class PlotSize:
    """The PNG's size in pixels and its resolution (which sets the text size)."""

    width_px: int = 1000
    height_px: int = 500
    dpi: int = 100


@dataclass(frozen=True)
class _Rows:
    time: _FloatArray
    phase_hours: _FloatArray
    values: _FloatArray
    curve: _FloatArray


_POINT_STYLE: dict[str, Any] = {"linestyle": "none", "marker": "o", "markersize": 1.2, "markeredgewidth": 0}
# A zoom on a few hours holds tens of points, not thousands: they are drawn bigger, or they vanish.
_FEW_POINTS, _FEW_POINTS_SIZE = 300, 3.0


def _point_style(count: int) -> dict[str, Any]:
    return _POINT_STYLE if count > _FEW_POINTS else {**_POINT_STYLE, "markersize": _FEW_POINTS_SIZE}


def _model_label(curve: _FloatArray) -> str:
    """Return the model line's legend label; a series without a model (all NaN) gets none."""
    return "Transit model" if np.isfinite(curve).any() else "_nolegend_"


def render_lightcurve_png(
    series: PlotSeries, view: PlotView = PlotView(), size: PlotSize = PlotSize(), *, title: str
) -> tuple[bytes, str]:
    """Plot detrended flux (points) and the transit model (line) against phase in hours or time in BTJD; PNG.

    ``view.start_btjd``/``end_btjd`` keep the rows whose TIME is in that window (in both modes). ``highlight_btjd``
    shades that window in time mode, and colours the points whose TIME falls in it in phase mode. Gaps longer than
    five median cadences stay empty in time mode. ``series.model`` may be None. The PNG bytes are deterministic.
    """
    if view.x not in ("phase", "time"):
        raise ValueError(f"Unknown x axis {view.x!r}; choose phase or time.")
    if size.width_px < 100 or size.height_px < 100 or size.dpi < 10:
        raise ValueError("The plot must be at least 100×100 px at 10 dpi.")
    rows = _select_rows(series, view)
    canvas, axes = _blank_plot(size, title)
    if view.x == "phase":
        _draw_against_phase(axes, rows, view.highlight_btjd)
    else:
        rows = _draw_against_time(axes, rows, view)
    _set_ylim(axes, rows.values, rows.curve)
    if np.isfinite(rows.curve).any() or view.highlight_btjd is not None:
        axes.legend(loc="lower right", fontsize=8, markerscale=3, frameon=False)
    return encode_figure_png(canvas), PNG_MEDIA_TYPE


def _select_rows(series: PlotSeries, view: PlotView) -> _Rows:
    """Return the series as flat float arrays, phase in hours, keeping the rows inside the view's window."""
    time = np.asarray(series.time_btjd, dtype=float).reshape(-1)
    phase_hours = np.asarray(series.phase_days, dtype=float).reshape(-1) * 24.0
    values = np.asarray(series.flux, dtype=float).reshape(-1)
    model = series.model
    curve = np.full_like(values, np.nan) if model is None else np.asarray(model, dtype=float).reshape(-1)
    if not time.size == phase_hours.size == values.size == curve.size:
        raise ValueError("TIME, PHASE, flux and model must have the same length.")
    keep = np.ones(time.size, dtype=bool)
    with np.errstate(invalid="ignore"):
        if view.start_btjd is not None:
            keep &= time >= view.start_btjd
        if view.end_btjd is not None:
            keep &= time <= view.end_btjd
    return _Rows(time[keep], phase_hours[keep], values[keep], curve[keep])


def _blank_plot(size: PlotSize, title: str) -> tuple[FigureCanvasAgg, Axes]:
    """Return a canvas and its one set of axes, with the fixed pixel margins, the title and the flux label."""
    width_px, height_px = size.width_px, size.height_px
    figure = Figure(figsize=(width_px / size.dpi, height_px / size.dpi), dpi=size.dpi)
    canvas = FigureCanvasAgg(figure)
    figure.subplots_adjust(
        left=_LEFT_PX / width_px,
        right=1 - _RIGHT_PX / width_px,
        bottom=_BOTTOM_PX / height_px,
        top=1 - _TOP_PX / height_px,
    )
    axes = figure.add_subplot()
    # A figure text, not axes.set_title: the axes title repositions itself around tick labels, a costly layout pass.
    figure.text(0.5, 1 - 8 / height_px, title, ha="center", va="top", fontsize=11)
    axes.set_ylabel("Relative flux (detrended)")
    return canvas, axes


def _window_label(highlight_btjd: tuple[float, float] | None) -> str | None:
    return f"BTJD {highlight_btjd[0]:.2f}–{highlight_btjd[1]:.2f}" if highlight_btjd is not None else None


def _draw_against_phase(axes: Axes, rows: _Rows, highlight_btjd: tuple[float, float] | None) -> None:
    order = np.argsort(rows.phase_hours, kind="stable")
    axes.plot(rows.phase_hours[order], rows.values[order], color=POINT_COLOR, **_point_style(rows.values.size))
    if highlight_btjd is not None:
        with np.errstate(invalid="ignore"):
            inside = (rows.time >= highlight_btjd[0]) & (rows.time <= highlight_btjd[1])
        axes.plot(
            rows.phase_hours[inside],
            rows.values[inside],
            color=HIGHLIGHT_COLOR,
            label=_window_label(highlight_btjd),
            **{**_POINT_STYLE, "markersize": 2.5},
        )
    axes.plot(
        rows.phase_hours[order], rows.curve[order], color=MODEL_COLOR, linewidth=1.2, label=_model_label(rows.curve)
    )
    axes.set_xlabel("Phase (hours)")
    _set_xlim(axes, rows.phase_hours)


def _draw_against_time(axes: Axes, rows: _Rows, view: PlotView) -> _Rows:
    """Draw the rows in time order, the model broken at gaps; return the rows in that order."""
    order = np.argsort(rows.time, kind="stable")
    time, values, curve = rows.time[order], rows.values[order], rows.curve[order]
    if view.highlight_btjd is not None:
        axes.axvspan(
            *view.highlight_btjd,
            color=HIGHLIGHT_SHADE,
            alpha=0.5,
            linewidth=0,
            zorder=0,
            label=_window_label(view.highlight_btjd),
        )
    axes.plot(time, values, color=POINT_COLOR, **_point_style(values.size))
    gapped_time, gapped_curve = _break_at_gaps(time, curve)
    axes.plot(gapped_time, gapped_curve, color=MODEL_COLOR, linewidth=1.0, label=_model_label(curve))
    axes.set_xlabel("Time (BTJD = BJD - 2457000, days)")
    axes.ticklabel_format(axis="x", useOffset=False)  # a zoom reads 1334.40, not 0.40 + 1.334e3
    if view.start_btjd is not None and view.end_btjd is not None:
        axes.set_xlim(view.start_btjd, view.end_btjd)
    else:
        _set_xlim(axes, time)
    return _Rows(time, rows.phase_hours[order], values, curve)


def encode_figure_png(canvas: FigureCanvasAgg) -> bytes:
    """Return the drawn figure as an 8-bit RGB PNG with no metadata, so the same plot gives the same bytes."""
    # backend_agg has no annotations; draw() then buffer_rgba() is savefig's raw path without its overhead.
    canvas.draw()  # type: ignore[no-untyped-call]
    return encode_rgb_png(np.asarray(canvas.buffer_rgba()))  # type: ignore[no-untyped-call]


def _break_at_gaps(time: _FloatArray, values: _FloatArray) -> tuple[_FloatArray, _FloatArray]:
    """Insert a NaN after every sample followed by a gap, so a line drawn through them breaks there."""
    finite = np.isfinite(time)
    if finite.sum() < 3:
        return time, values
    steps = np.diff(time[finite])
    cadence = float(np.median(steps))
    if cadence <= 0:
        return time, values
    positions = np.flatnonzero(finite)
    after = positions[:-1][steps > _GAP_CADENCES * cadence] + 1
    return np.insert(time, after, np.nan), np.insert(values, after, np.nan)


def _set_xlim(axes: Axes, x_values: _FloatArray) -> None:
    finite = x_values[np.isfinite(x_values)]
    if finite.size and finite.max() > finite.min():
        axes.set_xlim(float(finite.min()), float(finite.max()))


def _set_ylim(axes: Axes, flux: _FloatArray, model: _FloatArray) -> None:
    finite_flux, finite_model = flux[np.isfinite(flux)], model[np.isfinite(model)]
    lows, highs = [], []
    if finite_flux.size:
        low, high = np.percentile(finite_flux, [_Y_LOW_PCT, _Y_HIGH_PCT])
        lows.append(float(low))
        highs.append(float(high))
    if finite_model.size:
        lows.append(float(finite_model.min()))
        highs.append(float(finite_model.max()))
    if not lows:
        return
    low, high = min(lows), max(highs)
    pad = 0.05 * (high - low) if high > low else 1e-3
    axes.set_ylim(low - pad, high + pad)
