"""Sectors and FFI cutouts (TESScut), by TIC or by position."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from service.api.answers import respond, then_url
from service.api.negotiation import negotiate
from service.api.params import (
    CutoutArgsDep,
    CutoutSource,
    PositionDep,
    PositionOverrideDep,
    described,
    position_source,
    tic_source,
)
from service.api.problems import UPSTREAM_PROBLEMS, binary_answer, problem_responses
from service.deps import ServicesDep, TicIdDep
from service.schemas import CutoutSummary, JobView, SectorList
from service.services.answers import Found
from service.services.cutouts import CutoutFormat

router = APIRouter(tags=["FFI cutouts"])

CUTOUT_FORMATS = {"fits": "application/fits", "json": "application/json"}

Accept = Annotated[str | None, Header(include_in_schema=False)]
Format = Annotated[
    Literal["fits", "json"] | None,
    described(
        "`fits` (the target pixel file) or `json` (a summary of it); overrides the Accept header.",
        ("summary", "A JSON summary", "json"),
    ),
]

CUTOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: binary_answer(
        "The target pixel file (application/fits), or its summary (application/json).", "application/fits"
    ),
    202: {
        "description": "Still being made: poll `Location` (/jobs/{id}) after `Retry-After` seconds.",
        "model": JobView,
    },
    **problem_responses(404, 406, 422, *UPSTREAM_PROBLEMS),
}


def _serve_cutout(source: Callable[..., Awaitable[CutoutSource]]) -> Callable[..., Awaitable[Response]]:
    """Return the handler that serves the cutout ``source`` names, as FITS or its JSON summary."""

    async def serve(
        request: Request,
        cutout_source: Annotated[CutoutSource, Depends(source)],
        services: ServicesDep,
        cutout: CutoutArgsDep,
        format: Format = None,
        accept: Accept = None,
    ) -> Response:
        """Plan (the target may need MAST) and serve the cutout, all within ``wait`` (see `SlowAnswers`)."""
        fmt: CutoutFormat = "json" if negotiate(format, accept, CUTOUT_FORMATS) == "json" else "fits"
        vary = "Accept" if format is None else None
        answer = await services.cutouts.answer(cutout_source.target, cutout, fmt=fmt, then=then_url(request), vary=vary)
        return respond(request, answer, services.limiters)

    return serve


@router.get(
    "/sectors",
    response_model=SectorList,
    summary="Sectors that observed a position",
    description="Every sector, camera and CCD whose full-frame images cover the position (TESScut's sector lookup).",
    responses={
        200: {"description": "The sector list (empty when no sector did)."},
        **problem_responses(422, *UPSTREAM_PROBLEMS),
    },
)
async def sectors_at(request: Request, position: PositionDep, services: ServicesDep) -> Response:
    """List the sectors that observed a position."""
    body, hit = await services.cutouts.sectors_response(position, {})
    return respond(request, Found(body, hit), services.limiters)


@router.get(
    "/tic/{tic_id}/sectors",
    response_model=SectorList,
    summary="Sectors that observed a TIC",
    description="The TIC's position comes from `ra`/`dec` when given, else from its DV header, else from the TESS "
    "Input Catalog (`position_source` says which).",
    responses={200: {"description": "The sector list."}, **problem_responses(404, 422, *UPSTREAM_PROBLEMS)},
)
async def sectors_of_tic(
    request: Request,
    tic_id: TicIdDep,
    services: ServicesDep,
    position: PositionOverrideDep,
) -> Response:
    """List the sectors that observed a TIC."""
    target = await services.targets.for_tic(tic_id, position)
    extra = {"tic_id": tic_id, "position_source": target.source}
    body, hit = await services.cutouts.sectors_response(target, extra)
    return respond(request, Found(body, hit), services.limiters)


router.get(
    "/cutout",
    name="cutout_at",
    response_model=CutoutSummary,
    summary="FFI cutout at a position",
    description="A target pixel file cut from TESS full-frame images by TESScut, for one sector. Slow the first "
    "time (seconds to minutes): the request waits up to `wait` seconds, then answers 202 with a job to poll. "
    "Cached afterwards; a cutout of a named `sector` is immutable.",
    responses=CUTOUT_RESPONSES,
)(_serve_cutout(position_source))
router.get(
    "/tic/{tic_id}/cutout",
    name="cutout_of_tic",
    response_model=CutoutSummary,
    summary="FFI cutout around a TIC",
    description="As `/cutout`, centred on the TIC; the file's header carries `TICID`, `OBJECT='TIC …'` and the "
    "TESS magnitude, which TESScut leaves blank.",
    responses=CUTOUT_RESPONSES,
)(_serve_cutout(tic_source))
