"""DV light curves as products: the table (JSON, CSV, FITS) and the plot (PNG), each a declaration and a maker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.errors import BadUpstreamResponse, InvalidRequest
from service.rendering import lightcurve_tables, plots
from service.rendering.lightcurve_tables import CSV_MEDIA_TYPE as CSV_MEDIA_TYPE  # re-exported: see below
from service.rendering.lightcurve_tables import FITS_MEDIA_TYPE as FITS_MEDIA_TYPE
from service.rendering.lightcurve_tables import JSON_MEDIA_TYPE as JSON_MEDIA_TYPE
from service.rendering.plots import PlotSeries, render_lightcurve_png

# What a plot shows and its size are this product's inputs, so the routes take them from here.
from service.rendering.plots import PlotSize as PlotSize
from service.rendering.plots import PlotView as PlotView
from service.schemas import LightCurve
from service.services.dv import select_lightcurve
from service.services.identity import Product
from service.services.tce_products import Made, TceData, TceProduct
from service.upstream.exomast import DvTable

# The routes take the media types from here (re-exported above with `as`): api imports no rendering module.
LightCurveFormat = Literal["json", "csv", "fits"]
PLOT_COLUMNS = ("TIME", "PHASE", "LC_DETREND", "MODEL_INIT")


@dataclass(frozen=True)
class LightCurveParams:
    """Everything that shapes a light-curve table beyond the TCE: format, columns, a BTJD window."""

    format: LightCurveFormat
    columns: tuple[str, ...] | None
    start_btjd: float | None
    end_btjd: float | None

    def key_parts(self) -> tuple[object, ...]:
        """Return what keys the answer: equal requests share one key (columns case-folded, without repeats)."""
        columns = ",".join(dict.fromkeys(c.upper() for c in self.columns)) if self.columns is not None else "*"
        return (self.format, columns, self.start_btjd, self.end_btjd)


@dataclass(frozen=True)
class LightCurvePlot:
    """Everything that shapes a light-curve PNG: what it shows and its size."""

    view: PlotView
    size: PlotSize


def _resolve_columns(table: DvTable, requested: tuple[str, ...] | None) -> list[str] | None:
    if requested is None:
        return None
    by_upper = {f.name.upper(): f.name for f in table.fields}
    unknown = [name for name in requested if name.upper() not in by_upper]
    if unknown:
        raise InvalidRequest(
            f"Unknown column(s) {', '.join(unknown)}; this light curve has {', '.join(f.name for f in table.fields)}.",
            extensions={"available_columns": [f.name for f in table.fields]},
        )
    return list(dict.fromkeys(by_upper[name.upper()] for name in requested))


def make_table(data: TceData, params: LightCurveParams) -> Made:
    """Return the light curve's selected rows and columns as JSON, CSV or FITS."""
    ref = data.ref
    columns = _resolve_columns(data.table, params.columns)
    selected = select_lightcurve(data.table, columns, params.start_btjd, params.end_btjd)
    stem = f"tic{data.tic_id}_{ref.sectors}_{ref.tce}_dvt"
    if params.format == "json":
        meta = {
            "tic_id": data.tic_id,
            "tce_id": ref.id,
            "sectors": ref.sectors,
            "start_btjd": params.start_btjd,
            "end_btjd": params.end_btjd,
        }
        payload, media_type = lightcurve_tables.to_json(selected, meta)
        return Made(LIGHTCURVE.product.json_body(payload), media_type)
    if params.format == "csv":
        payload, media_type = lightcurve_tables.to_csv(selected)
        disposition = f'attachment; filename="{stem}.csv"'
    else:
        assert data.headers is not None
        payload, media_type = lightcurve_tables.to_fits(selected, data.headers.primary, data.headers.data, ref.tce)
        disposition = f'attachment; filename="{stem}.fits"'
    return Made(payload, media_type, {"Content-Disposition": disposition})


def make_plot(data: TceData, plot: LightCurvePlot) -> Made:
    """Return the PNG of the detrended light curve (against phase with the model, or against time)."""
    missing = [c for c in PLOT_COLUMNS if c not in data.table.columns]
    if missing:
        raise BadUpstreamResponse(
            f"ExoMAST's DV light curve lacks {', '.join(missing)}, so it cannot be plotted.", upstream="ExoMAST"
        )
    columns = data.table.columns
    series = PlotSeries(columns["TIME"], columns["PHASE"], columns["LC_DETREND"], columns["MODEL_INIT"])
    title = f"Detrended Lightcurve (TIC {data.tic_id} - {data.ref.id})"
    payload, media_type = render_lightcurve_png(series, plot.view, plot.size, title=title)
    return Made(payload, media_type)


LIGHTCURVE = TceProduct(
    Product(
        "lightcurve",
        (JSON_MEDIA_TYPE, CSV_MEDIA_TYPE, FITS_MEDIA_TYPE),
        (lightcurve_tables, make_table, _resolve_columns),
        LightCurve,
    ),
    make_table,
    needs_headers=lambda params: params.format == "fits",
)
LIGHTCURVE_PLOT = TceProduct(
    Product("lightcurve-plot", (plots.PNG_MEDIA_TYPE,), (plots, make_plot), kind="render"),
    make_plot,
    renders=True,
    hit_is_cached=True,
)
