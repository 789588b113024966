"""The explorer's interactive light-curve plots: Bokeh figures without data, as JSON items for BokehJS to embed.

The page fills the named data sources from the public API's JSON (so what it shows is what a script would get),
and listens for the DOM events the figures dispatch. Names and events are this module's contract with
`service/api/web/static/explorer.js`:

- model ids: on the time figure (named `lc_time`, the phase figure `lc_phase`) the sources `lc` (``x``, ``y``: BTJD,
  relative flux in ppm), `model` (``x``, ``y``), `events` (``x0``, ``x1``: the found events), `transits` (``x``:
  the TCE's predicted mid-transit times) and `window` (``x0``, ``x1``: the selected window); on the phase figure
  `phase_lc` and `phase_model` (``x``: days from mid-transit);
- a width-only box selection on the time figure dispatches ``explorer:window`` on ``window`` with
  ``detail = {start, end}`` (BTJD) once the drag ends.

Points are drawn with the WebGL back end, so 20k-point light curves pan and zoom smoothly.
"""

from __future__ import annotations

from typing import Any

from bokeh.embed import json_item
from bokeh.events import SelectionGeometry
from bokeh.models import BoxSelectTool, ColumnDataSource, CustomJS, Range1d
from bokeh.plotting import figure

__all__ = ["SOURCE_NAMES", "WINDOW_EVENT", "lightcurve_plot_items"]

WINDOW_EVENT = "explorer:window"
SOURCE_NAMES = ("lc", "model", "events", "transits", "window", "phase_lc", "phase_model")

_POINTS = "#1f4e79"
_MODEL = "#d62728"
_EVENT = "#ff7f0e"
_WINDOW = "#2ca02c"

# Dispatched once the box-select drag ends (``final``); the geometry's x0/x1 are in data units (BTJD).
_ON_SELECT = f"""
if (!cb_obj.final) return;
const g = cb_obj.geometry;
const start = Math.min(g.x0, g.x1), end = Math.max(g.x0, g.x1);
source.selected.indices = [];
window.dispatchEvent(new CustomEvent("{WINDOW_EVENT}", {{detail: {{start: start, end: end}}}}));
"""


def _source(name: str, *columns: str) -> ColumnDataSource:
    return ColumnDataSource(data={column: [] for column in columns}, name=name)


def _figure(name: str, x_label: str, tools: str) -> Any:
    plot = figure(
        name=name,
        height=340,
        sizing_mode="stretch_width",
        output_backend="webgl",
        tools=tools,
        active_drag="xpan" if "xpan" in tools else "pan",
        active_scroll="xwheel_zoom" if "xwheel_zoom" in tools else "wheel_zoom",
        x_axis_label=x_label,
        y_axis_label="Relative flux (ppm)",
        # Explicit ranges: the page sets them from robust limits once the data arrive (one outlier must not
        # flatten the curve), and "reset" returns to them.
        x_range=Range1d(start=0, end=1),
        y_range=Range1d(start=-1, end=1),
    )
    plot.toolbar.logo = None
    plot.min_border_left = 60
    return plot


def _time_figure() -> Any:
    plot = _figure("lc_time", "Time (BTJD = BJD - 2457000)", "xpan,xwheel_zoom,box_zoom,reset,save")
    events = _source("events", "x0", "x1")
    plot.vstrip(x0="x0", x1="x1", source=events, fill_color=_EVENT, fill_alpha=0.25, line_alpha=0)
    selected = _source("window", "x0", "x1")
    plot.vstrip(x0="x0", x1="x1", source=selected, fill_color=_WINDOW, fill_alpha=0.2, line_color=_WINDOW)
    transits = _source("transits", "x")
    plot.vspan(x="x", source=transits, line_color=_MODEL, line_dash="dashed", line_alpha=0.7)
    points = _source("lc", "x", "y")
    plot.scatter(x="x", y="y", source=points, size=2.5, color=_POINTS, alpha=0.6, legend_label="Flux")
    model = _source("model", "x", "y")
    plot.line(x="x", y="y", source=model, color=_MODEL, line_width=1.5, legend_label="Transit model")
    select = BoxSelectTool(dimensions="width", description="Select a window: its movie and diagnosis")
    plot.add_tools(select)
    plot.toolbar.active_drag = select
    plot.legend.location = "top_left"
    plot.legend.background_fill_alpha = 0.7
    plot.legend.click_policy = "hide"
    plot.js_on_event(SelectionGeometry, CustomJS(args={"source": points}, code=_ON_SELECT))
    return plot


def _phase_figure() -> Any:
    plot = _figure("lc_phase", "Phase (days from mid-transit)", "pan,wheel_zoom,box_zoom,reset,save")
    points = _source("phase_lc", "x", "y")
    plot.scatter(x="x", y="y", source=points, size=2.5, color=_POINTS, alpha=0.5, legend_label="Detrended")
    model = _source("phase_model", "x", "y")
    plot.line(x="x", y="y", source=model, color=_MODEL, line_width=2, legend_label="Transit model")
    plot.legend.location = "bottom_left"
    plot.legend.click_policy = "hide"
    return plot


def lightcurve_plot_items() -> dict[str, Any]:
    """Return the empty time and phase figures as Bokeh JSON items (``{"time": item, "phase": item}``)."""
    return {"time": json_item(_time_figure()), "phase": json_item(_phase_figure())}
