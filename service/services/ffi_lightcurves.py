"""FFI light curves of any star: the table (JSON, CSV, FITS), its plot (PNG) and its events, from a cached cutout.

Three cutout-backed products, each a pure maker and a declaration. Each measures the cutout itself
(`ffi_photometry.measure_cutout`, tens of milliseconds) rather than sharing an intermediate: every product is
cached on its own, and a cutout is measured again only when one of them is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, Literal
from urllib.parse import urlencode

import numpy as np

from service import tpf
from service.errors import InvalidRequest
from service.rendering import lightcurve_tables, plots
from service.rendering.lightcurve_tables import CSV_MEDIA_TYPE as CSV_MEDIA_TYPE  # re-exported: see below
from service.rendering.lightcurve_tables import FITS_MEDIA_TYPE as FITS_MEDIA_TYPE
from service.rendering.lightcurve_tables import JSON_MEDIA_TYPE as JSON_MEDIA_TYPE
from service.rendering.lightcurve_tables import ColumnInfo, LightCurveTable
from service.rendering.plots import PlotSeries, PlotView, render_lightcurve_png
from service.schemas import EventList, FfiLightCurve
from service.science import events as event_search
from service.science import photometry
from service.science.events import DEFAULT_MIN_SNR as DEFAULT_MIN_SNR
from service.services import ffi_photometry
from service.services.cutout_products import CutoutProduct, RenderLimits
from service.services.cutouts import CutoutPlan
from service.services.events import EventParams, event_json
from service.services.ffi_photometry import MIN_SIZE_PX, FfiPhotometry, measure_cutout
from service.services.identity import Product
from service.services.lightcurves import LightCurvePlot
from service.services.tce_products import Made

# The routes take the media types and DEFAULT_MIN_SNR from here (re-exported with `as`): api imports no rendering
# or science module.
FfiFormat = Literal["json", "csv", "fits"]
DEFAULT_SIZE_PX = 50  # the cutout routes' default size= (api/params.cutout_args): links leave it out

COLUMNS = (
    ColumnInfo("TIME", "BJD - 2457000, days", "Mid-exposure time of the FFI (TESScut's TIME)", "real"),
    ColumnInfo("FLUX", "e-/s", "Flux summed over the aperture, background subtracted", "real"),
    ColumnInfo("FLUX_ERR", "e-/s", "1-sigma error of FLUX: the pixels' errors and the background's", "real"),
    ColumnInfo("BACKGROUND", "e-/s", "Background under the aperture (sky level per pixel × aperture pixels)", "real"),
    ColumnInfo("CENTROID_COL", "pixel", "Flux-weighted centroid, column (0-based cutout pixels)", "real"),
    ColumnInfo("CENTROID_ROW", "pixel", "Flux-weighted centroid, row (0-based cutout pixels)", "real"),
    ColumnInfo("QUALITY", None, "TESS quality flags of the FFI (bitmask; see quality_bits)", "int"),
)
APERTURE_WORDS = {
    "threshold": f"The pixels of the median image brighter than its median by {photometry.THRESHOLD_SIGMA:g} sigma "
    "(scaled MAD), reached from the target's pixel without going uphill (a neighbour beyond a saddle stays out); "
    f"at most {photometry.MAX_APERTURE_PIXELS}, the nearest the target.",
    "disk": f"Too few pixels of the star are above the threshold (median + {photometry.THRESHOLD_SIGMA:g} sigma of "
    f"the median image): the pixels within {photometry.DISK_RADIUS_PX:g} px of its position.",
}
BACKGROUND_WORDS = (
    "Per frame, the median of the background pixels, times the aperture's pixel count. Background pixels do not "
    f"touch the aperture, are fainter than the {photometry.BACKGROUND_PERCENTILE:g}th percentile of the median "
    f"image among those (no stars), and are the {photometry.MAX_BACKGROUND_PIXELS} such pixels nearest the target."
)
# Bits of the SPOC-style APERTURE image: pixel collected, in the aperture, used for the centroid, background.
APERTURE_BITS = {"on_ccd": 1, "aperture": 2, "centroid": 4, "background": 8}


@dataclass(frozen=True)
class FfiTableParams:
    """The format of an FFI light-curve table, and whether it was negotiated (answer with ``Vary: Accept``)."""

    format: FfiFormat
    negotiated: bool

    def key_parts(self) -> tuple[object, ...]:
        """Return what keys the answer: the format alone (however it was chosen, the bytes are the same)."""
        return (self.format,)


def check_size(plan: CutoutPlan, params: object, limits: RenderLimits) -> None:
    """Refuse a cutout too small to leave pixels for the background, before any cutout is fetched."""
    if plan.size_px < MIN_SIZE_PX:
        raise InvalidRequest(
            f"size={plan.size_px} leaves no pixels around the star for the background; FFI photometry needs "
            f"size >= {MIN_SIZE_PX} (the default is {DEFAULT_SIZE_PX})."
        )


def _measure(source: BinaryIO, plan: CutoutPlan) -> FfiPhotometry:
    return measure_cutout(source, plan.target.ra_deg, plan.target.dec_deg)


def _table(measured: FfiPhotometry) -> LightCurveTable:
    p = measured.photometry
    values = (measured.time_btjd, p.flux, p.flux_err, p.background, p.centroid_col, p.centroid_row, measured.quality)
    return LightCurveTable(COLUMNS, {info.name: np.asarray(v) for info, v in zip(COLUMNS, values, strict=True)})


def _quality_bits(quality: np.ndarray) -> dict[str, str]:
    every = int(np.bitwise_or.reduce(quality)) if quality.size else 0
    return {str(bit): name for bit, name in photometry.QUALITY_FLAGS.items() if every & bit}


def _description(plan: CutoutPlan, measured: FfiPhotometry) -> dict[str, Any]:
    """Return the light curve's metadata: where, which cutout, the aperture and the background."""
    aperture = measured.aperture
    xy = measured.target_xy
    return {
        "tic_id": plan.target.tic_id,
        "ra_deg": plan.target.ra_deg,
        "dec_deg": plan.target.dec_deg,
        "sector": plan.sector,
        "camera": measured.camera,
        "ccd": measured.ccd,
        "size_px": plan.size_px,
        "target_pixel": {"x": round(xy[0], 3), "y": round(xy[1], 3)},
        "aperture_pixels": [list(pixel) for pixel in aperture.pixels_xy],
        "aperture": {
            "method": aperture.method,
            "n_pixels": int(aperture.mask.sum()),
            "threshold_e_per_s": round(aperture.level, 4),
            "description": APERTURE_WORDS[aperture.method],
        },
        "background": {"n_pixels": int(measured.background.sum()), "description": BACKGROUND_WORDS},
        "quality_bits": _quality_bits(measured.quality),
    }


def _fits(plan: CutoutPlan, measured: FfiPhotometry, table: LightCurveTable) -> bytes:
    target = plan.target
    primary = {
        "TELESCOP": "TESS",
        "INSTRUME": "TESS Photometer",
        "ORIGIN": "tess-service",
        # lightkurve reads a TESS file whose CREATOR names a light curve as a TessLightCurve.
        "CREATOR": "tess-service FFI LightCurve (simple aperture photometry)",
        "OBJECT": f"TIC {target.tic_id}" if target.tic_id is not None else "",
        "TICID": target.tic_id,
        "SECTOR": plan.sector,
        "CAMERA": measured.camera,
        "CCD": measured.ccd,
        "RA_OBJ": target.ra_deg,
        "DEC_OBJ": target.dec_deg,
        "TESSMAG": target.tessmag,
    }
    finite = measured.time_btjd[np.isfinite(measured.time_btjd)]
    data = {
        "TIMEREF": "SOLARSYSTEM",
        "TASSIGN": "SPACECRAFT",
        "TIMESYS": "TDB",
        "BJDREFI": 2457000,
        "BJDREFF": 0.0,
        "TIMEUNIT": "d",
        "TSTART": float(finite.min()) if finite.size else None,
        "TSTOP": float(finite.max()) if finite.size else None,
        "NPIXSAP": int(measured.aperture.mask.sum()),
        "NPIXBKG": int(measured.background.sum()),
        "APMETHOD": measured.aperture.method,
        "APLEVEL": float(measured.aperture.level),
    }
    bits = APERTURE_BITS
    image = (
        measured.on_ccd * bits["on_ccd"]
        + measured.aperture.mask * (bits["aperture"] + bits["centroid"])
        + measured.background * bits["background"]
    ).astype(np.int32)
    legend = {"BITS": "1 data, 2 aperture, 4 centroid, 8 background"}
    payload, _ = lightcurve_tables.to_fits(
        table, primary, data, "LIGHTCURVE", images=[("APERTURE", image, {**measured.wcs, **legend})], note="FFI SAP"
    )
    return payload


def make_table(source: BinaryIO, plan: CutoutPlan, params: FfiTableParams, limits: RenderLimits) -> Made:
    """Return the cutout's light curve as JSON (the DV light curve's shape, plus how it was measured), CSV or FITS."""
    measured = _measure(source, plan)
    table = _table(measured)
    who = f"tic{plan.target.tic_id}" if plan.target.tic_id is not None else "ffi"
    stem = f"{who}_s{plan.sector:04d}_{plan.size_px}px_ffi_lc"
    if params.format == "json":
        payload, media_type = lightcurve_tables.to_json(table, _description(plan, measured))
        return Made(FFI_LIGHTCURVE.product.json_body(payload), media_type)
    if params.format == "csv":
        payload, media_type = lightcurve_tables.to_csv(table)
        return Made(payload, media_type, {"Content-Disposition": f'attachment; filename="{stem}.csv"'})
    return Made(
        _fits(plan, measured, table), FITS_MEDIA_TYPE, {"Content-Disposition": f'attachment; filename="{stem}.fits"'}
    )


def _plot_window(plot: LightCurvePlot) -> tuple[float, float] | None:
    view = plot.view
    return (view.start_btjd, view.end_btjd) if view.start_btjd is not None and view.end_btjd is not None else None


def _who(plan: CutoutPlan) -> str:
    target = plan.target
    return f"TIC {target.tic_id}" if target.tic_id is not None else f"RA {target.ra_deg:.4f}, Dec {target.dec_deg:.4f}"


def _check_rows(time: np.ndarray, view: PlotView, sector: int) -> None:
    """Refuse a plot window that holds no cadence of the sector: it would be an empty plot."""
    if view.start_btjd is None and view.end_btjd is None:
        return
    finite = time[np.isfinite(time)]
    low = view.start_btjd if view.start_btjd is not None else -np.inf
    high = view.end_btjd if view.end_btjd is not None else np.inf
    if not np.any((finite >= low) & (finite <= high)):
        span = f"BTJD {finite.min():.4f}–{finite.max():.4f}" if finite.size else "no valid times"
        raise InvalidRequest(
            f"The window holds no cadence of sector {sector} ({span}); pass start/end inside it, or sector=."
        )


def make_plot(source: BinaryIO, plan: CutoutPlan, plot: LightCurvePlot, limits: RenderLimits) -> tuple[bytes, str]:
    """Return the PNG of the detrended relative flux (around 0, like DV's LC_DETREND) against time."""
    measured = _measure(source, plan)
    _check_rows(measured.time_btjd, plot.view, plan.sector)
    time = measured.time_btjd
    series = PlotSeries(time, np.full(time.size, np.nan), measured.relative_flux())
    title = f"FFI light curve, detrended ({_who(plan)} · sector {plan.sector})"
    try:
        return render_lightcurve_png(series, plot.view, plot.size, title=title)
    except ValueError as exc:
        raise InvalidRequest(f"This plot cannot be drawn: {exc}") from exc


def cutout_link(plan: CutoutPlan) -> tuple[str, list[tuple[str, object]]]:
    """Return the path prefix of a product of this cutout (``/tic/{id}`` or none) and the query naming the cutout.

    A TIC's own position and the default size are left out of the query; a position given outright is kept.
    """
    target = plan.target
    at: list[tuple[str, object]] = [("ra", target.ra_deg), ("dec", target.dec_deg)]
    if target.tic_id is not None:
        base, place = f"/tic/{target.tic_id}", at if target.source == "request" else []
    else:
        base, place = "", at
    size: list[tuple[str, object]] = [("size", plan.size_px)] if plan.size_px != DEFAULT_SIZE_PX else []
    return base, [*place, ("sector", plan.sector), *size]


def _links(plan: CutoutPlan, event: event_search.Event, span: tuple[float, float]) -> dict[str, str | None]:
    """Return the movie and the plot of the event's window padded by one duration each side, within the sector."""
    pad = event.duration_hours / event_search.HOURS_PER_DAY
    start, end = max(event.start_btjd - pad, span[0]), min(event.end_btjd + pad, span[1])
    base, cutout = cutout_link(plan)
    window = [("start", f"{start:.4f}"), ("end", f"{end:.4f}")]
    highlight = ("highlight", f"{event.start_btjd:.4f},{event.end_btjd:.4f}")
    return {
        "movie": f"{base}/movie?" + urlencode([*cutout, *window]),
        "plot": f"{base}/ffi-lightcurve.png?" + urlencode([*cutout, *window, highlight], safe=","),
        "diagnosis": f"{base}/diagnosis?"
        + urlencode([*cutout, ("start", f"{event.start_btjd:.5f}"), ("end", f"{event.end_btjd:.5f}")]),
    }


def _event_json(plan: CutoutPlan, measured: FfiPhotometry, event: event_search.Event) -> dict[str, Any]:
    """Return one event as the DV events list it, plus the OR of its window's QUALITY flags and their names."""
    time = measured.time_btjd[np.isfinite(measured.time_btjd)]
    quality = photometry.window_quality(measured.time_btjd, measured.quality, event.start_btjd, event.end_btjd)
    links = _links(plan, event, (float(time.min()), float(time.max())))
    return {**event_json(event, links, None), "quality": quality, "quality_flags": photometry.quality_names(quality)}


def make_events(source: BinaryIO, plan: CutoutPlan, params: EventParams, limits: RenderLimits) -> Made:
    """Return the events of the detrended FFI light curve (`find_events`), each with its QUALITY and links."""
    measured = _measure(source, plan)
    relative = measured.relative_flux()
    found = event_search.find_events(
        measured.time_btjd, relative, min_snr=params.min_snr, max_events=params.max_events, kinds=params.kinds
    )
    document = {
        "tic_id": plan.target.tic_id,
        "tce_id": None,
        "sector": plan.sector,
        "source": "ffi",
        "min_snr": params.min_snr,
        "max_events": params.max_events,
        "kind": params.kind,
        "n_points": int(np.count_nonzero(np.isfinite(relative))),
        "events": [_event_json(plan, measured, event) for event in found],
        "predicted_transits": None,
    }
    return Made(FFI_EVENTS.product.json_body(document), JSON_MEDIA_TYPE)


# The science, the reading and the rendering shape the bytes, so their source is part of the products' identity.
_MEASURING = (photometry, ffi_photometry, tpf, _measure)
FFI_LIGHTCURVE = CutoutProduct(
    Product(
        "ffi-lightcurve",
        (JSON_MEDIA_TYPE, CSV_MEDIA_TYPE, FITS_MEDIA_TYPE),
        (*_MEASURING, lightcurve_tables, make_table, _table, _description, _fits, _quality_bits),
        FfiLightCurve,
    ),
    make=make_table,
    check=check_size,
    vary=lambda params: "Accept" if params.negotiated else None,
)
FFI_LIGHTCURVE_PLOT = CutoutProduct(
    Product(
        "ffi-lightcurve-plot", (plots.PNG_MEDIA_TYPE,), (*_MEASURING, plots, make_plot, _check_rows), kind="render"
    ),
    make=make_plot,
    check=check_size,
    window=_plot_window,
)
FFI_EVENTS = CutoutProduct(
    Product(
        "ffi-events",
        (JSON_MEDIA_TYPE,),
        (*_MEASURING, event_search, make_events, _event_json, _links, cutout_link),
        EventList,
    ),
    make=make_events,
    check=check_size,
)
