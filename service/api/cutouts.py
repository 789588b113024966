"""Sectors and FFI cutouts (TESScut), by TIC or by position."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from service.api.jobflow import Planned, Work, answer_planned, result_url
from service.api.negotiation import negotiate
from service.api.problems import UPSTREAM_PROBLEMS, problem_responses
from service.deps import ServicesDep, TicIdDep
from service.errors import InvalidRequest
from service.infra.http_cache import cached_response
from service.schemas import CutoutSummary, JobView, SectorList
from service.services.cutouts import CutoutFormat, CutoutPlan
from service.services.jobs import Job
from service.services.targets import Target

router = APIRouter(tags=["FFI cutouts"])

CUTOUT_FORMATS = {"fits": "application/fits", "json": "application/json"}
MAX_WAIT_S = 600.0

Ra = Annotated[
    float,
    Query(
        ge=0,
        lt=360,
        allow_inf_nan=False,
        description="Right ascension, degrees (ICRS).",
        openapi_examples={"weird": {"summary": "TIC 214568914", "value": 340.8004}},
    ),
]
Dec = Annotated[
    float,
    Query(
        ge=-90,
        le=90,
        allow_inf_nan=False,
        description="Declination, degrees (ICRS).",
        openapi_examples={"weird": {"summary": "TIC 214568914", "value": -36.3439}},
    ),
]
OptionalRa = Annotated[
    float | None,
    Query(
        ge=0,
        lt=360,
        allow_inf_nan=False,
        description="Right ascension, degrees; overrides the TIC's own position (give `dec` too).",
        openapi_examples={"weird": {"summary": "TIC 214568914", "value": 340.8004}},
    ),
]
OptionalDec = Annotated[
    float | None,
    Query(
        ge=-90,
        le=90,
        allow_inf_nan=False,
        description="Declination, degrees; overrides the TIC's own position (give `ra` too).",
        openapi_examples={"weird": {"summary": "TIC 214568914", "value": -36.3439}},
    ),
]
Sector = Annotated[
    int | None,
    Query(
        ge=1,
        le=999,
        description="TESS sector; default: the latest sector that observed the target.",
        openapi_examples={"first": {"summary": "Sector 1", "value": 1}},
    ),
]
Size = Annotated[
    int,
    Query(
        ge=1,
        le=100,
        description="Cutout side in pixels (21″ each); at most 100, i.e. TESScut's 10,000-pixel limit.",
        openapi_examples={"tutorial": {"summary": "The tutorial's 50×50", "value": 50}},
    ),
]
Wait = Annotated[
    float | None,
    Query(
        ge=0,
        le=MAX_WAIT_S,
        allow_inf_nan=False,
        description="Seconds to wait for a cutout that is not cached yet before answering 202 with a job to poll "
        "(default 60; 0 answers at once).",
        openapi_examples={"now": {"summary": "Do not wait", "value": 0}},
    ),
]
Format = Annotated[
    Literal["fits", "json"] | None,
    Query(
        description="`fits` (the target pixel file) or `json` (a summary of it); overrides the Accept header.",
        openapi_examples={"summary": {"summary": "A JSON summary", "value": "json"}},
    ),
]

CUTOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The target pixel file (application/fits), or its summary (application/json).",
        "content": {
            "application/fits": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    202: {
        "description": "Still being made: poll `Location` (/jobs/{id}) after `Retry-After` seconds.",
        "model": JobView,
    },
    **problem_responses(404, 406, 422, *UPSTREAM_PROBLEMS),
}


async def _serve_cutout(
    request: Request,
    services: ServicesDep,
    target: Callable[[], Awaitable[Target]],
    size: int,
    sector: int | None,
    fmt: CutoutFormat,
    wait: float | None,
    negotiated: bool,
) -> Response:
    """Plan (``target`` may need MAST) and serve the cutout, all within ``wait`` (see `answer_planned`)."""
    cutouts = services.cutouts

    async def plan() -> CutoutPlan:
        return await cutouts.plan(await target(), size, sector)

    async def starter(plan: CutoutPlan) -> Callable[[], Job]:
        return lambda: cutouts.start(plan, result_url(request))  # only when a job starts: not on a cache hit

    def work(plan: CutoutPlan) -> Work:
        return Work(
            cached=lambda: cutouts.cached(plan, fmt),
            starter=lambda: starter(plan),
            finished=lambda job: cutouts.after_job(plan, job, fmt),
            immutable=plan.sector_pinned,
            vary="Accept" if negotiated else None,
            max_age_cap_s=None if plan.sector_pinned else services.settings.ttl_sectors_s,
        )

    return await answer_planned(request, services, Planned(plan, work, cutouts.pool), wait)


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
async def sectors_at(request: Request, ra: Ra, dec: Dec, services: ServicesDep) -> Response:
    """List the sectors that observed a position."""
    body, hit = await services.cutouts.sectors_response(Target(ra, dec), {})
    return cached_response(request, body, hit=hit, limiters=services.limiters)


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
    ra: OptionalRa = None,
    dec: OptionalDec = None,
) -> Response:
    """List the sectors that observed a TIC."""
    target = await services.targets.for_tic(tic_id, *explicit_position(ra, dec))
    extra = {"tic_id": tic_id, "position_source": target.source}
    body, hit = await services.cutouts.sectors_response(target, extra)
    return cached_response(request, body, hit=hit, limiters=services.limiters)


def explicit_position(ra: float | None, dec: float | None) -> tuple[float | None, float | None]:
    """Return an explicit position, refusing half of one."""
    if (ra is None) != (dec is None):
        raise InvalidRequest("Give both ra and dec, or neither (the TIC's own position is used).")
    return ra, dec


@router.get(
    "/cutout",
    response_model=CutoutSummary,
    summary="FFI cutout at a position",
    description="A target pixel file cut from TESS full-frame images by TESScut, for one sector. Slow the first "
    "time (seconds to minutes): the request waits up to `wait` seconds, then answers 202 with a job to poll. "
    "Cached afterwards; a cutout of a named `sector` is immutable.",
    responses=CUTOUT_RESPONSES,
)
async def cutout_at(
    request: Request,
    ra: Ra,
    dec: Dec,
    services: ServicesDep,
    sector: Sector = None,
    size: Size = 50,
    format: Format = None,
    wait: Wait = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Serve an FFI cutout at a position."""
    fmt: CutoutFormat = "json" if negotiate(format, accept, CUTOUT_FORMATS) == "json" else "fits"
    target = Target(ra, dec)

    async def given() -> Target:
        return target

    return await _serve_cutout(
        request,
        services,
        given,
        size,
        sector,
        fmt,
        wait,
        format is None,
    )


@router.get(
    "/tic/{tic_id}/cutout",
    response_model=CutoutSummary,
    summary="FFI cutout around a TIC",
    description="As `/cutout`, centred on the TIC; the file's header carries `TICID`, `OBJECT='TIC …'` and the "
    "TESS magnitude, which TESScut leaves blank.",
    responses=CUTOUT_RESPONSES,
)
async def cutout_of_tic(
    request: Request,
    tic_id: TicIdDep,
    services: ServicesDep,
    sector: Sector = None,
    size: Size = 50,
    ra: OptionalRa = None,
    dec: OptionalDec = None,
    format: Format = None,
    wait: Wait = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Serve an FFI cutout around a TIC."""
    fmt: CutoutFormat = "json" if negotiate(format, accept, CUTOUT_FORMATS) == "json" else "fits"
    position = explicit_position(ra, dec)
    return await _serve_cutout(
        request,
        services,
        lambda: services.targets.for_tic(tic_id, *position),
        size,
        sector,
        fmt,
        wait,
        format is None,
    )
