"""What caused an event: the diagnosis of a window from a cached cutout (JSON), its picture and the pixels' curves.

Three cutout-backed products. Each reads only the window's span of the cutout (`window_pixels`), runs the science
(`science.diagnosis`: difference image, moving source, background, QUALITY → a verdict) and shapes it. The
diagnosis and its picture are also made from the `Surroundings` asked before making (the TIC's stars over the
cutout, SkyBoT's bodies near it), which are part of their parameters and so of their cache keys: a SkyBoT answer
that changes (or comes back after an outage) makes a new diagnosis rather than serving the old one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlencode

import numpy as np

from service import tpf
from service.errors import InvalidRequest
from service.rendering import diagnosis_pictures, plots
from service.rendering.diagnosis_pictures import DiagnosisPicture, Mark, PixelCurves
from service.schemas_diagnosis import DiagnosisDocument
from service.science import diagnosis as science
from service.science import known_objects, photometry, pixels, tracks
from service.science.known_objects import PredictedPath
from service.services import window_pixels
from service.services.cutout_products import CutoutProduct, RenderLimits, outside_sector
from service.services.cutouts import CutoutPlan
from service.services.ffi_lightcurves import JSON_MEDIA_TYPE as JSON_MEDIA_TYPE  # re-exported for the routes
from service.services.ffi_lightcurves import cutout_link
from service.services.identity import Product
from service.services.surroundings import KnownObjects, Surroundings
from service.services.tce_products import Made
from service.services.window_pixels import SkyFrame, WindowPixels, read_window_pixels, separation_arcsec
from service.upstream.skybot import SolarSystemObject

PNG_MEDIA_TYPE = plots.PNG_MEDIA_TYPE
DEFAULT_MAX_WINDOW_DAYS = 2.0
# A known body is listed when its predicted path comes this close to the cutout during the window.
KNOWN_MARGIN_PX = 5.0
DEFAULT_RADIUS_PX = 2
# The catalogued star nearest the difference centroid is named when it is within this many pixels of it.
NEAREST_STAR_MAX_PX = 3.0


@dataclass(frozen=True)
class DiagnosisParams:
    """The window to diagnose, and what surrounds the cutout (asked of the TIC and SkyBoT before making)."""

    start_btjd: float
    end_btjd: float
    surroundings: Surroundings

    def key_parts(self) -> tuple[object, ...]:
        """Return what keys the answer: the window and a digest of the surroundings."""
        return (self.start_btjd, self.end_btjd, *self.surroundings.key_parts())


@dataclass(frozen=True)
class PixelsParams:
    """The window whose pixels' light curves are drawn, and how many pixels around the target (``radius``)."""

    start_btjd: float
    end_btjd: float
    radius_px: int


def _span(params: DiagnosisParams | PixelsParams) -> tuple[float, float]:
    return params.start_btjd, params.end_btjd


def _check(plan: CutoutPlan, params: object, limits: RenderLimits) -> None:
    """Nothing to refuse before the cutout is read: the window's length is checked with the request."""


@dataclass(frozen=True)
class Diagnosed:
    """A diagnosis with the pixels it was drawn from."""

    pixels: WindowPixels
    result: science.Diagnosis


def _read(source: BinaryIO, plan: CutoutPlan, start: float, end: float, limits: RenderLimits) -> WindowPixels:
    """Return the window's pixels, cut to the sector's frames; 422 when it holds none."""
    target = plan.target
    try:
        return read_window_pixels(source, target.ra_deg, target.dec_deg, start, end, limits.max_frames)
    except tpf.WindowOutsideSector as exc:
        raise outside_sector(exc, plan.sector) from exc


def _diagnose(source: BinaryIO, plan: CutoutPlan, start: float, end: float, limits: RenderLimits) -> Diagnosed:
    read = _read(source, plan, start, end, limits)
    x, y = read.series.target_xy
    window = read.window
    try:
        result = science.diagnose(
            read.series, window.start_btjd, window.end_btjd, north_pa_deg=read.sky.north_pa_deg(x, y)
        )
    except ValueError as exc:
        raise InvalidRequest(f"This window cannot be diagnosed: {exc}.") from exc
    return Diagnosed(read, result)


def _event_epoch(result: science.Diagnosis) -> float:
    """Return when the event happened: the moving source's closest approach, else the in-event frames' middle."""
    if result.track is not None:
        return result.track.closest_approach_btjd
    frames = result.frames
    return (frames.start_btjd + frames.end_btjd) / 2


def predicted_path(body: SolarSystemObject, epoch_btjd: float, sky: SkyFrame) -> PredictedPath | None:
    """Return a body's path in cutout pixels: its position at SkyBoT's epoch and where its rates take it in 1 h."""
    here = sky.pixel(body.ra_deg, body.dec_deg)
    cos_dec = math.cos(math.radians(body.dec_deg))
    if here is None or cos_dec < 1e-6:
        return None
    later = sky.pixel(
        body.ra_deg + body.ra_rate_arcsec_per_h / 3600.0 / cos_dec, body.dec_deg + body.dec_rate_arcsec_per_h / 3600.0
    )
    if later is None:
        return None
    return PredictedPath(epoch_btjd, here, (later[0] - here[0], later[1] - here[1]))


@dataclass(frozen=True)
class KnownBody:
    """A known body near the cutout during the window, and whether it is the moving source found.

    ``matches_track`` is None when no moving source was found.
    """

    body: SolarSystemObject
    path: PredictedPath
    matches_track: bool | None


def known_bodies(known: KnownObjects, diagnosed: Diagnosed) -> list[KnownBody]:
    """Return the known bodies whose predicted path comes near the cutout during the window."""
    read, result = diagnosed.pixels, diagnosed.result
    shape = read.series.flux.shape[1:]
    found = []
    for body in known.objects:
        path = predicted_path(body, known.epoch_btjd, read.sky)
        if path is None or not path.crosses_box(
            result.frames.start_btjd, result.frames.end_btjd, shape, KNOWN_MARGIN_PX
        ):
            continue
        match = known_objects.matches_track(path, result.track) if result.track is not None else None
        found.append(KnownBody(body, path, match))
    return found


def _r(value: float, digits: int) -> float:
    """Return ``value`` rounded, as a Python float (numpy's scalars are not JSON to orjson)."""
    return round(float(value), digits)


def _xy(xy: tuple[float, float]) -> dict[str, float]:
    return {"column": _r(xy[0], 3), "row": _r(xy[1], 3)}


def _round(value: float, digits: int) -> float | None:
    return _r(value, digits) if math.isfinite(value) else None


def _nearest_star(stars: Surroundings, sky: SkyFrame, xy: tuple[float, float]) -> dict[str, Any] | None:
    position = sky.sky(*xy)
    if position is None or not stars.stars:
        return None
    separations = [(separation_arcsec(*position, star.ra_deg, star.dec_deg), star) for star in stars.stars]
    separation, star = min(separations, key=lambda pair: pair[0])
    if separation > NEAREST_STAR_MAX_PX * pixels.ARCSEC_PER_PX:
        return None
    return {"tic_id": star.tic_id, "separation_arcsec": _r(separation, 2), "tmag": star.tessmag}


def _difference_json(diagnosed: Diagnosed, surroundings: Surroundings) -> dict[str, Any] | None:
    difference = diagnosed.result.difference
    if difference is None:
        return None
    target = diagnosed.pixels.series.target_xy
    x, y = difference.centroid_xy
    return {
        "centroid_px": _xy((x, y)),
        "offset_px": _xy((x - target[0], y - target[1])),
        "offset_arcsec": _r(difference.offset_arcsec, 2),
        "offset_sigma": _round(difference.offset_significance, 2),
        "snr": _r(difference.snr, 2),
        "nearest_star": _nearest_star(surroundings, diagnosed.pixels.sky, (x, y)),
    }


def _track_json(track: tracks.Track | None) -> dict[str, Any] | None:
    if track is None:
        return None
    return {
        "points": [{"btjd": _r(t, 5), "column": _r(x, 3), "row": _r(y, 3)} for t, x, y in track.points],
        "speed_px_per_hour": _r(track.speed_px_per_hour, 3),
        "speed_arcsec_per_hour": _r(track.speed_arcsec_per_hour, 2),
        "position_angle_deg": _r(track.position_angle_deg, 1),
        "closest_approach_px": _r(track.closest_approach_px, 3),
        "closest_approach_btjd": _r(track.closest_approach_btjd, 5),
        "crosses": track.crosses,
    }


def _frames_json(diagnosed: Diagnosed) -> dict[str, Any]:
    series, result = diagnosed.pixels.series, diagnosed.result
    frames, time = result.frames, series.time_btjd
    start, end = frames.start_btjd, frames.end_btjd

    def stretch(mask: np.ndarray) -> dict[str, Any]:
        chosen = time[mask]
        return {
            "n_frames": int(mask.sum()),
            "first_btjd": _r(float(chosen.min()), 5) if chosen.size else None,
            "last_btjd": _r(float(chosen.max()), 5) if chosen.size else None,
        }

    aperture = result.aperture
    return {
        "in_event": stretch(frames.in_event),
        "reference_before": stretch(frames.reference & (time < start)),
        "reference_after": stretch(frames.reference & (time > end)),
        "flagged_excluded": int((frames.flagged & (frames.window | frames.around)).sum()),
        "aperture_pixels": int(series.aperture.sum()),
        "depth_ppm": _round(aperture.depth_ppm, 1) if aperture is not None else None,
        "depth_err_ppm": _round(aperture.depth_err_ppm, 1) if aperture is not None else None,
        "depth_snr": _round(aperture.snr, 2) if aperture is not None else None,
    }


def _background_json(background: science.BackgroundChange) -> dict[str, Any]:
    return {
        "level_e_per_s": _round(background.window_level, 3),
        "reference_level_e_per_s": _round(background.reference_level, 3),
        "departure_sigma": _round(background.departure_sigma, 2),
        "departs": background.departs,
        "ramp": background.ramp,
    }


def _known_json(known: KnownObjects, bodies: list[KnownBody], event_btjd: float) -> dict[str, Any]:
    if known.status != "ok":
        return {"status": "unavailable", "epoch_btjd": known.epoch_btjd, "objects": [], "detail": known.detail}
    objects = []
    for found in bodies:
        body, path = found.body, found.path
        vx, vy = path.velocity_px_per_hour
        objects.append(
            {
                "name": body.name,
                "number": body.number,
                "class": body.object_class,
                "v_mag": body.v_mag,
                "ra_deg": _r(body.ra_deg, 6),
                "dec_deg": _r(body.dec_deg, 6),
                "predicted_px": _xy(path.at(event_btjd)),
                "rate_px_per_hour": {"column": _r(vx, 3), "row": _r(vy, 3)},
                "rate_arcsec_per_hour": _r(math.hypot(body.ra_rate_arcsec_per_h, body.dec_rate_arcsec_per_h), 2),
                "matches_track": found.matches_track,
            }
        )
    return {"status": "ok", "epoch_btjd": known.epoch_btjd, "objects": objects, "detail": None}


def _links(plan: CutoutPlan, start: float, end: float) -> dict[str, str]:
    base, cutout = cutout_link(plan)
    query = urlencode([*cutout, ("start", f"{start:.5f}"), ("end", f"{end:.5f}")])
    return {
        "picture": f"{base}/diagnosis.png?{query}",
        "pixels": f"{base}/pixels.png?{query}",
        "movie": f"{base}/movie?{query}",
    }


def make_diagnosis(source: BinaryIO, plan: CutoutPlan, params: DiagnosisParams, limits: RenderLimits) -> Made:
    """Return the diagnosis of the window as JSON (`DiagnosisDocument`)."""
    diagnosed = _diagnose(source, plan, params.start_btjd, params.end_btjd, limits)
    result, series, window = diagnosed.result, diagnosed.pixels.series, diagnosed.pixels.window
    event_btjd = _event_epoch(result)
    bodies = known_bodies(params.surroundings.known, diagnosed)
    flags = result.background.flags_in_window
    target = plan.target
    judgement = result.judgement
    document = {
        "tic_id": target.tic_id,
        "ra_deg": target.ra_deg,
        "dec_deg": target.dec_deg,
        "sector": plan.sector,
        "size_px": plan.size_px,
        "start_btjd": window.start_btjd,
        "end_btjd": window.end_btjd,
        "requested_start_btjd": window.requested_start_btjd,
        "requested_end_btjd": window.requested_end_btjd,
        "clamped": window.clamped,
        "verdict": judgement.verdict,
        "confidence": _r(judgement.confidence, 3),
        "explanation": _explanation(judgement, bodies),
        "target_px": _xy(series.target_xy),
        "event": _frames_json(diagnosed),
        "difference_image": _difference_json(diagnosed, params.surroundings),
        "moving_source": _track_json(result.track),
        "background": _background_json(result.background),
        "quality": {
            "flags": flags,
            "names": photometry.quality_names(flags),
            "flagged_frames": result.background.flagged_in_window,
        },
        "known_objects": _known_json(params.surroundings.known, bodies, event_btjd),
        # The requested window, as the client's own requests for the pictures name it: the same cache entries.
        "links": _links(plan, params.start_btjd, params.end_btjd),
    }
    return Made(DIAGNOSIS.product.json_body(document), JSON_MEDIA_TYPE)


def _explanation(judgement: science.Judgement, bodies: list[KnownBody]) -> str:
    """Return the verdict's sentence, naming the known body the moving source is when one matches."""
    named = [found.body for found in bodies if found.matches_track]
    if judgement.verdict != "moving_object" or not named:
        return judgement.explanation
    body = named[0]
    name = f"({body.number}) {body.name}" if body.number is not None else body.name
    known = f"the known solar-system body {name} ({body.object_class})"
    return f"{judgement.explanation[:-1]}: {known}; the dip is not on the star."


def _marks(bodies: list[KnownBody], diagnosed: Diagnosed) -> tuple[Mark, ...]:
    event_btjd = _event_epoch(diagnosed.result)
    return tuple(Mark(found.body.name, found.path.at(event_btjd), bool(found.matches_track)) for found in bodies)


def _who(plan: CutoutPlan) -> str:
    target = plan.target
    return f"TIC {target.tic_id}" if target.tic_id is not None else f"RA {target.ra_deg:.4f}, Dec {target.dec_deg:.4f}"


def make_picture(source: BinaryIO, plan: CutoutPlan, params: DiagnosisParams, limits: RenderLimits) -> Made:
    """Return the PNG: reference mean, in-event mean and difference image, with the evidence marked."""
    diagnosed = _diagnose(source, plan, params.start_btjd, params.end_btjd, limits)
    result, series, window = diagnosed.result, diagnosed.pixels.series, diagnosed.pixels.window
    levels = science.background_levels(series)
    flux = series.flux - levels[:, None, None]
    frames = result.frames
    reference = (
        np.nanmean(flux[frames.reference], axis=0) if frames.reference.any() else np.full(flux.shape[1:], np.nan)
    )
    in_event = np.nanmean(flux[frames.in_event], axis=0) if frames.in_event.any() else np.full(flux.shape[1:], np.nan)
    judgement = result.judgement
    bodies = known_bodies(params.surroundings.known, diagnosed)
    picture = DiagnosisPicture(
        reference=reference,
        in_event=in_event,
        difference=reference - in_event,
        target_xy=series.target_xy,
        aperture=series.aperture,
        centroid_xy=result.difference.centroid_xy if result.difference is not None else None,
        track=result.track.points if result.track is not None else None,
        known=_marks(bodies, diagnosed),
        title=f"{_who(plan)} · sector {plan.sector} · BTJD {window.start_btjd:.3f}–{window.end_btjd:.3f}",
        verdict=f"{judgement.verdict} ({judgement.confidence:.2f}): {_explanation(judgement, bodies)}",
    )
    try:
        return Made(*diagnosis_pictures.render_diagnosis_png(picture))
    except ValueError as exc:
        raise InvalidRequest(f"This picture cannot be drawn: {exc}") from exc


def make_pixels(source: BinaryIO, plan: CutoutPlan, params: PixelsParams, limits: RenderLimits) -> Made:
    """Return the PNG of the light curves of the pixels within ``radius`` of the target's pixel."""
    read = _read(source, plan, params.start_btjd, params.end_btjd, limits)
    series = read.series
    ny, nx = series.flux.shape[1:]
    column, row = (min(max(round(v), 0), n - 1) for v, n in zip(series.target_xy, (nx, ny), strict=True))
    r = params.radius_px
    c0, c1 = max(column - r, 0), min(column + r + 1, nx)
    r0, r1 = max(row - r, 0), min(row + r + 1, ny)
    if c1 - c0 != r1 - r0:  # at the cutout's edge: a square grid still, shifted inwards
        side = min(c1 - c0, r1 - r0)
        c1, r1 = c0 + side, r0 + side
    curves = PixelCurves(
        time_btjd=series.time_btjd,
        flux=series.flux[:, r0:r1, c0:c1],
        origin_xy=(c0, r0),
        aperture=series.aperture[r0:r1, c0:c1],
        target_xy=series.target_xy,
        window=(read.window.start_btjd, read.window.end_btjd),
        flagged=(series.quality & pixels.FLAGGED_QUALITY) != 0,
        title=f"{_who(plan)} · sector {plan.sector} · pixels around the target",
    )
    try:
        return Made(*diagnosis_pictures.render_pixels_png(curves))
    except ValueError as exc:
        raise InvalidRequest(f"This picture cannot be drawn: {exc}") from exc


def _incomplete_cap(params: DiagnosisParams) -> int | None:
    """Return 0 (keep no copy) for an answer made while SkyBoT was unavailable: asked again, it may name the body."""
    return 0 if params.surroundings.known.status != "ok" else None


# The science, the reading and the rendering shape the bytes, so their source is part of the products' identity.
_READING = (tpf, window_pixels, pixels, photometry, _read)
_SCIENCE = (*_READING, science, tracks, known_objects, _diagnose, known_bodies, predicted_path, _explanation)
DIAGNOSIS = CutoutProduct(
    Product(
        "diagnosis",
        (JSON_MEDIA_TYPE,),
        (*_SCIENCE, make_diagnosis, _frames_json, _difference_json, _track_json, _known_json, _links, cutout_link),
        DiagnosisDocument,
    ),
    make=make_diagnosis,
    check=_check,
    window=_span,
    max_age_cap=_incomplete_cap,
)
DIAGNOSIS_PICTURE = CutoutProduct(
    Product("diagnosis-picture", (PNG_MEDIA_TYPE,), (*_SCIENCE, diagnosis_pictures, make_picture), kind="render"),
    make=make_picture,
    check=_check,
    window=_span,
    max_age_cap=_incomplete_cap,
)
PIXELS_PICTURE = CutoutProduct(
    Product("pixels-picture", (PNG_MEDIA_TYPE,), (*_READING, diagnosis_pictures, make_pixels), kind="render"),
    make=make_pixels,
    check=_check,
    window=_span,
)
