"""The diagnosis's response model: what caused an event, with the evidence (Swagger UI shows the example)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schema_examples import EXAMPLE_DIAGNOSIS

Verdict = Literal["on_target", "off_target", "moving_object", "scattered_light", "systematics", "inconclusive"]


class PixelPosition(BaseModel):
    """A position in the cutout's pixels (0-based; column = x, row = y, row 0 at the bottom as in FITS)."""

    column: float = Field(description="Column (x), pixels.")
    row: float = Field(description="Row (y), pixels.")


class FrameStretch(BaseModel):
    """Frames of the cutout used for one part of the comparison."""

    n_frames: int = Field(description="How many frames.")
    first_btjd: float | None = Field(description="Time of the first, BTJD (null without frames).")
    last_btjd: float | None = Field(description="Time of the last, BTJD.")


class EventFrames(BaseModel):
    """The frames compared and the change of the target's aperture photometry between them."""

    in_event: FrameStretch = Field(description="Unflagged frames inside [start, end].")
    reference_before: FrameStretch = Field(
        description="Unflagged reference frames before the window: from 1.75 to 0.75 window lengths before it "
        "(at least 3 h each side)."
    )
    reference_after: FrameStretch = Field(description="Unflagged reference frames after the window, likewise.")
    flagged_excluded: int = Field(description="Frames in the window or its reference left out for their QUALITY.")
    aperture_pixels: int = Field(description="Pixels in the target's aperture (as the FFI light curve's).")
    depth_ppm: float | None = Field(
        description="Drop of the background-subtracted aperture flux from reference to event, ppm (negative: brighter)."
    )
    depth_err_ppm: float | None = Field(description="Its 1-sigma error, from the reference frames' scatter.")
    depth_snr: float | None = Field(description="depth_ppm / depth_err_ppm.")


class NearestStar(BaseModel):
    """The TIC star nearest the difference image's centroid."""

    tic_id: int = Field(description="TESS Input Catalog id.")
    separation_arcsec: float = Field(description="From the centroid, arcseconds.")
    tmag: float | None = Field(description="TESS magnitude.")


class DifferenceImage(BaseModel):
    """The reference mean minus the in-event mean: where the light changed."""

    centroid_px: PixelPosition = Field(description="Flux-weighted centroid of the change.")
    offset_px: PixelPosition = Field(description="Centroid minus the target's pixel position.")
    offset_arcsec: float = Field(description="Length of that offset, arcseconds (21″ per pixel).")
    offset_sigma: float | None = Field(description="The offset's significance: its length over its error.")
    snr: float = Field(description="Signal-to-noise of the change around the centroid (positive: dimming).")
    nearest_star: NearestStar | None = Field(
        description="The catalogued (TIC, Tmag < 17) star nearest the centroid, when one is within 3 px (63″) of it."
    )


class TrackPoint(BaseModel):
    """Where the moving source was detected in one frame."""

    btjd: float = Field(description="Frame time, BTJD.")
    column: float = Field(description="Column, pixels.")
    row: float = Field(description="Row, pixels.")


class MovingSource(BaseModel):
    """A source moving in a straight line through the frames around the window."""

    points: list[TrackPoint] = Field(description="Detections on the line.")
    speed_px_per_hour: float = Field(description="Speed, pixels per hour.")
    speed_arcsec_per_hour: float = Field(description="Speed, arcseconds per hour.")
    position_angle_deg: float = Field(description="Direction of motion on the sky, degrees east of north.")
    closest_approach_px: float = Field(description="Closest distance to the target's pixel position, pixels.")
    closest_approach_btjd: float = Field(description="When it was closest, BTJD.")
    crosses: Literal["aperture", "background", "neither"] = Field(
        description="Which pixels its path crosses near the window: the target's aperture, the background pixels "
        "(the sky estimate), or neither."
    )


class Background(BaseModel):
    """The sky level (median of faint pixels) in the window against the reference."""

    level_e_per_s: float | None = Field(description="Median level over the window's frames, e-/s per pixel.")
    reference_level_e_per_s: float | None = Field(description="Median level over the reference frames.")
    departure_sigma: float | None = Field(description="|window − reference| over the reference's scatter.")
    departs: bool = Field(description="The level departs from the reference by more than 5 sigma.")
    ramp: bool = Field(description="It departs smoothly (a slow rise and fall): scattered light.")


class Quality(BaseModel):
    """The QUALITY flags of the window's frames."""

    flags: int = Field(description="Bitwise OR of QUALITY over the window's frames.")
    names: list[str] = Field(description="Their names, lowest bit first (momentum dump, coarse point, ...).")
    flagged_frames: int = Field(description="Frames in the window with a flag that makes them untrustworthy.")


class KnownObject(BaseModel):
    """A solar-system body that SkyBoT predicts near the cutout during the window."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(description="Designation or name.")
    number: int | None = Field(description="Minor-planet number, null when it has none.")
    class_: str = Field(alias="class", description="SkyBoT's dynamical class, e.g. `MB>Middle`.")
    v_mag: float | None = Field(description="Predicted V magnitude.")
    ra_deg: float = Field(description="RA at SkyBoT's epoch (`epoch_btjd`), degrees.")
    dec_deg: float = Field(description="Dec at that epoch, degrees.")
    predicted_px: PixelPosition = Field(
        description="Predicted cutout position at the event (the moving source's closest approach, else the "
        "window's middle): SkyBoT's position moved along its rates."
    )
    rate_px_per_hour: PixelPosition = Field(description="Predicted motion, pixels per hour.")
    rate_arcsec_per_hour: float = Field(description="Predicted speed on the sky, arcseconds per hour.")
    matches_track: bool | None = Field(
        description="It is the moving source found: within 3 px of it at closest approach, moving the same way "
        "as fast (within 30 %). Null when no moving source was found."
    )


class KnownObjects(BaseModel):
    """SkyBoT's answer: `ok` with the bodies near the cutout, or `unavailable` with what failed."""

    status: Literal["ok", "unavailable"] = Field(description="`unavailable`: SkyBoT could not be asked; see detail.")
    epoch_btjd: float = Field(description="The epoch SkyBoT was asked for: the window's middle, BTJD.")
    objects: list[KnownObject] = Field(description="The bodies whose predicted path comes near the cutout.")
    detail: str | None = Field(description="Why SkyBoT is unavailable, and whether to ask again.")


class DiagnosisLinks(BaseModel):
    """The pictures and the movie of the same window."""

    picture: str = Field(description="Reference, in-event and difference images with the evidence marked (PNG).")
    pixels: str = Field(description="The light curves of the pixels around the target (PNG).")
    movie: str = Field(description="The movie of the window.")


class DiagnosisDocument(BaseModel):
    """What caused the event in a window, from the cutout's pixels, with the evidence."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_DIAGNOSIS]})

    tic_id: int | None = Field(description="The TIC, when asked by TIC.")
    ra_deg: float = Field(description="The cutout's centre, RA degrees.")
    dec_deg: float = Field(description="The cutout's centre, Dec degrees.")
    sector: int = Field(description="The sector of the cutout.")
    size_px: int = Field(description="The cutout's side, pixels.")
    start_btjd: float = Field(
        description="The start of the window diagnosed, BTJD: the requested start, or the sector's first frame "
        "when the request reached before it."
    )
    end_btjd: float = Field(
        description="The end of the window diagnosed, BTJD: the requested end, or the sector's last frame when the "
        "request reached past it."
    )
    requested_start_btjd: float = Field(description="The window's start as requested, BTJD.")
    requested_end_btjd: float = Field(description="The window's end as requested, BTJD.")
    clamped: Literal["start", "end", "both"] | None = Field(
        description="Which ends of the requested window reached past the sector's frames and were cut to them "
        "(`start`, `end`, `both`); null when the window lies within the sector."
    )
    verdict: Verdict = Field(
        description="on_target (the target changed), off_target (a neighbour did), moving_object (a source "
        "crossed), scattered_light (the sky changed smoothly), systematics (flagged frames, nothing in the good "
        "ones) or inconclusive (no significant change)."
    )
    confidence: float = Field(description="How sure, 0-1.")
    explanation: str = Field(description="One sentence saying why.")
    target_px: PixelPosition = Field(description="The target's pixel position in the cutout.")
    event: EventFrames = Field(description="The frames compared and the aperture photometry depth.")
    difference_image: DifferenceImage | None = Field(description="Null when too few good frames to compare.")
    moving_source: MovingSource | None = Field(description="The moving source's track, or null.")
    background: Background = Field(description="The sky level and whether it departs (scattered light).")
    quality: Quality = Field(description="The window's QUALITY flags, decoded.")
    known_objects: KnownObjects = Field(description="Known solar-system bodies near the cutout (SkyBoT).")
    links: DiagnosisLinks = Field(description="Pictures and movie of the window.")
