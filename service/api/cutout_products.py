"""The one route handler of every cutout-backed product (movies, frames, and what comes next).

A product's routes differ only in where the cutout is centred (a TIC or a position: `tic_source`,
`position_source`) and in the dependency that turns the query into the product's parameters; `serve_product`
makes the handler from those three, and the router registers it under the route's own name and documentation.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from service.api.answers import respond, then_url
from service.api.params import CutoutArgsDep, CutoutSource, position_source, tic_source
from service.deps import Services, ServicesDep
from service.services.cutout_products import CutoutProduct
from service.services.cutouts import CutoutArgs
from service.services.targets import Target, TargetResolver

Q = TypeVar("Q")
# What completes a product's parameters once its target is known (e.g. asking what surrounds it), before planning.
Prepare = Callable[[Services, Target, CutoutArgs, Q], Awaitable[Q]]


def serve_product(
    product: CutoutProduct[Q],
    source: Callable[..., Awaitable[CutoutSource]],
    params: Callable[..., Awaitable[Q]],
    prepare: Prepare[Q] | None = None,
) -> Callable[..., Awaitable[Response]]:
    """Return the handler that answers ``product`` for the cutout ``source`` names, with the ``params`` it builds.

    It plans (the target and the sector lookup may need MAST) and answers within ``wait``: 200 from the cache,
    or 202 with the job that waits for the cutout and then makes the product. With ``prepare``, the target is
    resolved first and ``prepare`` completes the parameters from it.
    """

    async def serve(
        request: Request,
        cutout_source: Annotated[CutoutSource, Depends(source)],
        product_params: Annotated[Q, Depends(params)],
        services: ServicesDep,
        cutout: CutoutArgsDep,
    ) -> Response:
        target = cutout_source.target
        if prepare is not None:
            resolved = await target()
            product_params = await prepare(services, resolved, cutout, product_params)
            target = TargetResolver.at(resolved)
        answer = await services.cutout_products.answer(
            product,
            target,
            product_params,
            cutout,
            then=then_url(request),
            cutout_path=cutout_source.cutout_path,
        )
        return respond(request, answer, services.limiters)

    return serve


def serve_for_tic_and_position(
    router: APIRouter,
    path: str,
    what: str,
    product: CutoutProduct[Q],
    params: Callable[..., Awaitable[Q]],
    route: dict[str, Any],
    prepare: Prepare[Q] | None = None,
) -> None:
    """Register ``product`` at ``/tic/{tic_id}/{path}`` and at ``/{path}?ra=&dec=``, with ``route``'s documentation.

    Their operation ids are ``{path}`` (as a name) ``_of_tic`` and ``_at``; their summaries ``what`` of a TIC / at
    a position.
    """
    name = path.replace("-", "_").replace(".", "_").replace("/", "_")
    router.get(f"/tic/{{tic_id}}/{path}", name=f"{name}_of_tic", summary=f"{what} of a TIC", **route)(
        serve_product(product, tic_source, params, prepare)
    )
    router.get(f"/{path}", name=f"{name}_at", summary=f"{what} at a position", **route)(
        serve_product(product, position_source, params, prepare)
    )
