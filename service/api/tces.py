"""TCE lists and TCE summaries."""

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from service.api.answers import respond
from service.api.problems import UPSTREAM_PROBLEMS, problem_responses
from service.deps import ServicesDep, TicIdDep
from service.schemas import TceList, TceSummary
from service.services.answers import Found
from service.services.tce_products import TceProduct
from service.tces import TCE_ID_PATTERN

Q = TypeVar("Q")

router = APIRouter(tags=["Data Validation"])

TceIdPath = Annotated[
    str,
    Path(
        pattern=TCE_ID_PATTERN,
        description="TCE id from the TCE list (`s0001-s0001:TCE_1`), or a short `TCE_1` / `1` when only one TCE "
        "of the target has that number (otherwise 409 lists the candidates).",
        openapi_examples={
            "full": {"summary": "Full id", "value": "s0001-s0001:TCE_1"},
            "short": {"summary": "Short id (unambiguous for TIC 214568914)", "value": "TCE_1"},
        },
    ),
]


@router.get(
    "/tic/{tic_id}/tces",
    response_model=TceList,
    summary="List a target's TCEs",
    description="The Threshold Crossing Events that SPOC's Data Validation found for a TIC, sorted by sector "
    "range and TCE number. Cached (short TTL); `ETag`/`If-None-Match` supported.",
    responses={200: {"description": "The TCE list."}, **problem_responses(404, 422, *UPSTREAM_PROBLEMS)},
)
async def list_tces(request: Request, tic_id: TicIdDep, services: ServicesDep) -> Response:
    """List the TCEs of one TIC."""
    return respond(request, Found(*await services.dv.tce_list_response(tic_id)), services.limiters)


@router.get(
    "/tic/{tic_id}/tces/{tce_id}",
    response_model=TceSummary,
    summary="Summarise one TCE",
    description="Period, epoch, depth, duration, SNR, planet radius and the star's parameters, normalised with "
    "units in the names, plus ExoMAST's two DV headers as given.",
    responses={
        200: {"description": "The TCE summary."},
        **problem_responses(404, 409, 422, *UPSTREAM_PROBLEMS),
    },
)
async def get_tce(request: Request, tic_id: TicIdDep, tce_id: TceIdPath, services: ServicesDep) -> Response:
    """Summarise one TCE."""
    return respond(request, Found(*await services.dv.tce_summary_response(tic_id, tce_id)), services.limiters)


def serve_tce_product(
    product: TceProduct[Q], params: Callable[..., Awaitable[Q]]
) -> Callable[..., Awaitable[Response]]:
    """Return the handler that answers ``product`` for one TCE, with the parameters the ``params`` dependency reads."""

    async def serve(
        request: Request,
        tic_id: TicIdDep,
        tce_id: TceIdPath,
        services: ServicesDep,
        product_params: Annotated[Q, Depends(params)],
    ) -> Response:
        found = await services.tce_products.answer(product, tic_id, tce_id, product_params)
        return respond(request, found, services.limiters)

    return serve
