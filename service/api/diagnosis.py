"""What caused an event: the diagnosis of a window (JSON), its picture and the pixels' light curves (PNG)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter
from starlette.responses import Response

from service.api.cutout_products import serve_for_tic_and_position
from service.api.params import BTJD_RANGE, check_window, described
from service.api.problems import ACCEPTED, UPSTREAM_PROBLEMS, binary_answer, problem_responses
from service.deps import Services, ServicesDep
from service.errors import InvalidRequest
from service.schema_examples import EXAMPLE_DIAGNOSIS
from service.schemas_diagnosis import DiagnosisDocument
from service.services.cutouts import CutoutArgs
from service.services.diagnoses import (
    DEFAULT_RADIUS_PX,
    DIAGNOSIS,
    DIAGNOSIS_PICTURE,
    JSON_MEDIA_TYPE,
    PIXELS_PICTURE,
    DiagnosisParams,
    PixelsParams,
)
from service.services.surroundings import KnownObjects, Surroundings
from service.services.targets import Target

router = APIRouter(tags=["Diagnosis"])

Start = Annotated[
    float,
    described(
        "Window start, BTJD (BJD − 2457000). The window is compared with reference frames before and after it "
        "(from 0.75 to 1.75 window lengths away, at least 3 h); it may be at most "
        "TESS_SERVICE_DIAGNOSIS_MAX_WINDOW_DAYS long (2 days by default; 422 otherwise). A window reaching past the "
        "sector's first or last frame is cut to the frames there are (`clamped` says so); one with no frame of "
        "the sector in it is a 422.",
        ("mover", "The day of the 'weird' dip", 1334.0),
        **BTJD_RANGE,
    ),
]
End = Annotated[
    float,
    described("Window end, BTJD; after `start`.", ("mover", "The day of the 'weird' dip", 1335.0), **BTJD_RANGE),
]
Radius = Annotated[
    int,
    described(
        "Pixels drawn around the target's pixel: a (2·radius + 1)² grid.",
        ("default", "5 × 5 pixels", DEFAULT_RADIUS_PX),
        ge=1,
        le=5,
    ),
]
_NOTHING_ASKED = Surroundings((), KnownObjects("unavailable", 0.0, (), "not asked yet"))


def _window(start: float, end: float, max_days: float) -> tuple[float, float]:
    check_window(start, end)
    if not end > start:
        raise InvalidRequest(f"The window must have a length: start ({start}) equals end.")
    if end - start > max_days:
        raise InvalidRequest(
            f"The window is {end - start:.3g} days long, more than the {max_days:g} days a diagnosis looks at; "
            "narrow it to the event."
        )
    return start + 0.0, end + 0.0


# Dependencies are `async def`: FastAPI would run a plain `def` in a worker thread, a hop per request.
async def diagnosis_params(start: Start, end: End, services: ServicesDep) -> DiagnosisParams:
    """Return the window to diagnose (the surroundings are asked once the target is known: `surroundings`)."""
    return DiagnosisParams(*_window(start, end, services.settings.diagnosis_max_window_days), _NOTHING_ASKED)


async def surroundings(
    services: Services, target: Target, cutout: CutoutArgs, params: DiagnosisParams
) -> DiagnosisParams:
    """Return the parameters with what surrounds the cutout: the TIC's stars, SkyBoT's bodies."""
    around = await services.surroundings.around(target, cutout.size_px, params.start_btjd, params.end_btjd)
    return dataclasses.replace(params, surroundings=around)


async def pixels_params(
    start: Start, end: End, services: ServicesDep, radius: Radius = DEFAULT_RADIUS_PX
) -> PixelsParams:
    """Return the window and how many pixels around the target to draw."""
    return PixelsParams(*_window(start, end, services.settings.diagnosis_max_window_days), radius)


COLD = (
    " Made from the cached FFI cutout (`sector`, `size` as for the movie; the sector defaults to the one that "
    "covers the window); the first request follows the cutout's wait / 202 / job rules, then it is cached (ETag)."
)
DIAGNOSIS_ROUTE: dict[str, Any] = {
    "response_model": DiagnosisDocument,
    "description": "Says, with the evidence, what caused the change in the window: the target itself "
    "(`on_target`), a neighbouring star (`off_target`, with the catalogued star nearest the change), a moving "
    "source (`moving_object`, with its track, and named when SkyBoT knows it), scattered light "
    "(`scattered_light`) or the spacecraft (`systematics`: flagged frames and nothing in the good ones); "
    "`inconclusive` when the pixels show no significant change. The evidence: the difference image (reference "
    "mean minus in-event mean) and its centroid's offset from the target, the aperture photometry depth, a "
    "straight-line track search through the frames around the window, the background level, and the QUALITY "
    "flags. `known_objects` lists SkyBoT's bodies near the cutout (observer C57, TESS), or says `unavailable` "
    "when SkyBoT cannot be asked: the diagnosis answers all the same." + COLD,
    "responses": {
        200: {
            "description": "The diagnosis (TIC 214568914's dip: a known asteroid crossing the aperture).",
            "content": {JSON_MEDIA_TYPE: {"example": EXAMPLE_DIAGNOSIS}},
        },
        **ACCEPTED,
        **problem_responses(404, 422, *UPSTREAM_PROBLEMS),
    },
}
PICTURE_ROUTE: dict[str, Any] = {
    "description": "The diagnosis as a picture: the reference mean, the in-event mean and the difference image "
    "side by side, with the target and its aperture, the difference centroid, the moving source's track and "
    "the known bodies' predicted positions marked, and the verdict." + COLD,
    "response_class": Response,
    "responses": {
        200: binary_answer("The picture.", "image/png"),
        **ACCEPTED,
        **problem_responses(404, 422, *UPSTREAM_PROBLEMS),
    },
}
PIXELS_ROUTE: dict[str, Any] = {
    "description": "The light curves of the pixels around the target over the window and its reference frames, "
    "laid out as on the sky (like lightkurve's `plot_pixels`): the aperture's pixels highlighted, the window "
    "shaded, flagged frames left out." + COLD,
    "response_class": Response,
    "responses": {
        200: binary_answer("The pixels' light curves.", "image/png"),
        **ACCEPTED,
        **problem_responses(404, 422, *UPSTREAM_PROBLEMS),
    },
}

serve_for_tic_and_position(
    router, "diagnosis", "Diagnosis of a window", DIAGNOSIS, diagnosis_params, DIAGNOSIS_ROUTE, surroundings
)
serve_for_tic_and_position(
    router,
    "diagnosis.png",
    "Picture of a window's diagnosis",
    DIAGNOSIS_PICTURE,
    diagnosis_params,
    PICTURE_ROUTE,
    surroundings,
)
serve_for_tic_and_position(
    router, "pixels.png", "Light curves of the pixels", PIXELS_PICTURE, pixels_params, PIXELS_ROUTE
)
