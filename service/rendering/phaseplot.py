"""ExoMAST's phase plot as a Bokeh page: phase-folded detrended flux and the transit model in, HTML out.

A pure function: arrays and a `bokeh.resources.Resources` in, an HTML string out. The caller chooses where BokehJS
comes from (the service names its own copy); Bokeh keeps only the bundles the figure uses (core and WebGL).

Every cadence is drawn, as ExoMAST draws them: the page is for zooming into single points. Measured in headless
chromium with software GL (benchmarks/bench_phaseplot.py), a three-sector TCE's 50k points take 1.1 s to their
first draw against 0.6 s for a tenth of them, and 0.34 s against 0.14 s a pan frame (BokehJS does not decimate WebGL
glyphs while panning); a canvas would be 9x and 16x slower. A GPU takes most of the pan's cost.

Bokeh names every model and element with a fresh id (a process-wide counter, UUIDs), so the same data would give
different bytes, and a different ETag, on every render. `_stable_ids` renames them after the fact, in order of
first appearance, with a prefix hashed from the page itself: equal data give equal bytes in any process, and two
different plots embedded in one page still have distinct element ids.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from bokeh.core.templates import FILE, get_env
from bokeh.embed import file_html
from bokeh.plotting import figure
from bokeh.resources import Resources

HTML_MEDIA_TYPE = "text/html; charset=utf-8"
PAGE_TITLE = "Phased Light Curve"  # ExoMAST's page title
X_LABEL, Y_LABEL = "Phase (days)", "Relative Flux (ppm)"
DATA_LEGEND, MODEL_LEGEND = "Detrended", "Transit Model"
PPM = 1e6
POINT_COLOR, MODEL_COLOR = "#1f3b73", "#d62728"

# The embeddable fragment: BokehJS's script tags, the plot's div, the document and the script that draws it;
# no <html>, <head> or <body>, so it can be put inside another page.
_FRAGMENT = get_env().from_string("{{ bokeh_js }}\n{{ plot_div }}\n{{ plot_script }}\n")
# Ids Bokeh makes: model ids from its counter ("p1234", always a whole JSON string) and UUIDs (documents, roots,
# elements). Neither can occur in the data, which Bokeh writes as base64 (no "-", never a whole "p<digits>").
_BOKEH_ID = re.compile(r'(?<=")p\d+(?=")|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
_ID_HASH_CHARS = 10

_FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PhaseSeries:
    """One value per cadence: the phase (days from mid-transit), the detrended relative flux and the model."""

    phase_days: npt.ArrayLike
    flux: npt.ArrayLike
    model: npt.ArrayLike


def render_phaseplot_html(series: PhaseSeries, *, label: str, resources: Resources, embed: bool = False) -> str:
    """Return ExoMAST's phase plot of ``series`` as a whole HTML page, or as an embeddable fragment.

    Cadences without a phase or a flux are left out; the model is drawn as a line in phase order. Flux and model
    are shown in ppm. ``label`` titles the plot (``TIC 100100827 (S0001-S0003) TCE_1``). The same inputs give the
    same string.
    """
    phase, flux, model = _finite_rows(series)
    plot = figure(
        title=label,
        x_axis_label=X_LABEL,
        y_axis_label=Y_LABEL,
        sizing_mode="stretch_width",
        height=480,
        tools="pan,box_zoom,wheel_zoom,box_select,reset,save",
        active_scroll="wheel_zoom",
        output_backend="webgl",
    )
    plot.scatter(phase, flux * PPM, size=3, color=POINT_COLOR, alpha=0.6, legend_label=DATA_LEGEND)
    line_x, line_y = _line_vertices(phase, model)
    plot.line(line_x, line_y * PPM, color=MODEL_COLOR, line_width=2, legend_label=MODEL_LEGEND)
    plot.legend.location = "bottom_right"
    plot.legend.click_policy = "hide"  # a click on an item hides its points or line
    html = file_html(plot, resources=resources, title=PAGE_TITLE, template=_FRAGMENT if embed else FILE)
    return _stable_ids(html)


def _finite_rows(series: PhaseSeries) -> tuple[_FloatArray, _FloatArray, _FloatArray]:
    """Return phase, flux and model as float32 (DV's own precision), without cadences lacking phase or flux."""
    phase = np.asarray(series.phase_days, dtype=np.float32).reshape(-1)
    flux = np.asarray(series.flux, dtype=np.float32).reshape(-1)
    model = np.asarray(series.model, dtype=np.float32).reshape(-1)
    if not phase.size == flux.size == model.size:
        raise ValueError("PHASE, flux and model must have the same length.")
    keep = np.isfinite(phase) & np.isfinite(flux)
    return phase[keep], flux[keep], model[keep]


def _line_vertices(phase: _FloatArray, model: _FloatArray) -> tuple[_FloatArray, _FloatArray]:
    """Return the model's vertices in phase order, without the inner points of flat runs.

    Out of transit the model is one constant: dropping the points between a run's ends draws the same line and
    keeps the page a third lighter.
    """
    order = np.argsort(phase, kind="stable")
    x, y = phase[order], model[order]
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    keep = np.ones(y.size, dtype=bool)
    keep[1:-1] = (y[1:-1] != y[:-2]) | (y[1:-1] != y[2:])
    return x[keep], y[keep]


def _stable_ids(html: str) -> str:
    """Return ``html`` with Bokeh's ids replaced by ids made from the page itself (see the module docstring)."""
    found = list(dict.fromkeys(_BOKEH_ID.findall(html)))
    numbered = {bokeh_id: str(n) for n, bokeh_id in enumerate(found)}
    skeleton = _BOKEH_ID.sub(lambda m: numbered[m.group(0)], html)
    prefix = "ph" + hashlib.sha256(skeleton.encode()).hexdigest()[:_ID_HASH_CHARS]
    return _BOKEH_ID.sub(lambda m: f"{prefix}-{numbered[m.group(0)]}", html)
