"""The TESScut mirror's routes: ``sector`` and ``astrocut``, each a GET and a POST served by one endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from service.api.tesscut_mirror.openapi import ASTROCUT, SECTOR, Operation, moving_target
from service.api.tesscut_mirror.params import (
    PREFIX,
    AstrocutQueryDep,
    MovingTargetsNotSupported,
    SectorQueryDep,
)
from service.deps import Services, ServicesDep
from service.infra.head import is_head_request
from service.infra.http_cache import etag_matches
from service.services.cutouts import CutoutPlan
from service.services.tesscut_mirror import NO_DATA_MESSAGE, MirrorCutout, MirrorZip


class SharedPathRoute(APIRoute):
    """A route whose 405 lists every method its path serves: GET and POST of one path are two routes here.

    Starlette answers an unserved method from the first route whose path matches, with only that route's
    methods in ``Allow``; clients (and RFC 9110) expect all of them.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 405 with the path's whole ``Allow``, else handle as usual."""
        if self.methods and scope["method"] not in self.methods:
            allowed = sorted(_METHODS_BY_PATH.get(self.path, self.methods))
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(allowed)})
        await super().handle(scope, receive, send)


router = APIRouter(prefix=PREFIX, tags=["TESScut mirror"], route_class=SharedPathRoute)


def _add_get_and_post(path: str, endpoint: Callable[..., Any], operation: Operation, **route: Any) -> None:
    """Serve ``endpoint`` at ``path`` for GET (query string) and POST (form), routes ``{name}_get`` and ``_post``."""
    name = route.pop("name", endpoint.__name__)
    for method in ("GET", "POST"):
        router.add_api_route(
            path, endpoint, methods=[method], name=f"{name}_{method.lower()}", **operation.route_docs(method), **route
        )


async def sector(query: SectorQueryDep, services: ServicesDep) -> Response:
    """TESScut ``sector``: the sectors that observed a position."""
    results = await services.tesscut_mirror.sector_results(query.ra_deg, query.dec_deg, query.radius_deg)
    return Response(
        orjson.dumps({"results": results}), media_type="application/json", headers={"Cache-Control": "no-cache"}
    )


async def astrocut(request: Request, cutout: AstrocutQueryDep, services: ServicesDep) -> Response:
    """TESScut ``astrocut``: a zip of every sector's cutout, or TESScut's "no data" message."""
    archive = await services.tesscut_mirror.cutout_zip(cutout, plan_result_url)
    if archive is None:
        return Response(
            orjson.dumps({"msg": NO_DATA_MESSAGE}), media_type="application/json", headers={"Cache-Control": "no-store"}
        )
    return _zip_response(request, services, cutout, archive)


async def moving_target_refused(request: Request) -> Response:
    """TESScut ``moving_target/...``: not mirrored yet."""
    raise MovingTargetsNotSupported()


def plan_result_url(plan: CutoutPlan) -> str:
    """Return where the result of a plan's job is served: `/cutout` for squares, else this mirror."""
    target = plan.target
    rows, columns = plan.shape_px
    query: dict[str, str | float] = {"ra": target.ra_deg, "dec": target.dec_deg}
    if plan.is_square:
        return "/cutout?" + urlencode(query | {"size": columns, "sector": plan.sector})
    return f"{PREFIX}/astrocut?" + urlencode(query | {"x": columns, "y": rows, "units": "px", "sector": plan.sector})


def _zip_response(request: Request, services: Services, cutout: MirrorCutout, archive: MirrorZip) -> Response:
    max_age = archive.max_age_s()
    if not archive.immutable:
        max_age = min(max_age, services.settings.ttl_sectors_s)  # "every sector" changes when a new one is added
    name = f"astrocut_{cutout.ra_deg:.7f}_{cutout.dec_deg:.7f}_{cutout.ny}-x-{cutout.nx}.zip"
    headers = {
        "ETag": archive.etag,
        "Cache-Control": f"public, max-age={max_age}" + (", immutable" if archive.immutable else ""),
        "X-Cache": "HIT" if archive.hit else "MISS",
        "Content-Disposition": f'attachment; filename="{name}"',
    }
    if etag_matches(request.headers.get("if-none-match"), archive.etag):
        archive.close()
        return Response(status_code=304, headers=headers)
    size = archive.size_bytes
    if size is not None:
        headers["Content-Length"] = str(size)
    if is_head_request(request.scope):
        archive.close()
        return Response(status_code=200, media_type="application/zip", headers=headers)
    return StreamingResponse(archive.stream(services.limiters), media_type="application/zip", headers=headers)


_add_get_and_post("/sector", sector, SECTOR)
_add_get_and_post("/astrocut", astrocut, ASTROCUT)
for _what in ("sector", "astrocut"):
    _add_get_and_post(
        f"/moving_target/{_what}",
        moving_target_refused,
        moving_target(_what),
        name=f"moving_target_{_what}",
        status_code=501,  # its only answer: no "200" in the OpenAPI document
        response_class=Response,
    )

# Every method each path serves, for `SharedPathRoute`'s Allow (the app's copies of the routes keep these paths).
_METHODS_BY_PATH: dict[str, set[str]] = {}
for _route in router.routes:
    if isinstance(_route, APIRoute) and _route.methods:
        _METHODS_BY_PATH.setdefault(_route.path, set()).update(_route.methods)
