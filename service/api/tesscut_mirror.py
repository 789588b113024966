"""A TESScut v0.1 mirror under ``/tesscut/api/v0.1/``: unmodified astroquery ``Tesscut`` works against the service.

Point astroquery at the service with ``[mast] server = http://host:port`` in ``astroquery.cfg``. The wire format is
TESScut's (upstream-apis.md sections 3 and 5), followed the way the MAST emulator follows it:

- ``sector`` and ``astrocut`` answer GET query strings and POST form bodies alike (astroquery POSTs ``get_sectors``
  and ``get_cutouts`` with ``Accept: application/json`` and GETs ``download_cutouts``): ``Accept`` is never looked
  at, form values win over query values, the first of repeated values counts, unknown parameters are ignored.
- ``astrocut`` answers a zip of every file TESScut returned, one per sector/camera/CCD; "no data" is a 200 with
  ``{"msg": ...}``, which astroquery turns into a ``NoResultsWarning``.
- Bad input is a 400 whose problem document also carries TESScut's ``msg``; MAST's overload stays a 503/504, which
  astroquery raises as ``HTTPError``.

Answers come from the cache `/sectors` and `/cutout` fill, and fill it for them.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from service.api.problems import UPSTREAM_PROBLEMS, problem_responses
from service.deps import Services, ServicesDep
from service.errors import ServiceError
from service.infra.head import is_head_request
from service.infra.http_cache import etag_matches
from service.services.cutouts import CutoutPlan
from service.services.tesscut_mirror import (
    MAX_CUTOUT_PIXELS,
    NO_DATA_MESSAGE,
    PIXEL_SCALE_DEG,
    MirrorCutout,
    MirrorZip,
    TesscutMirror,
)

PREFIX = "/tesscut/api/v0.1"


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

MAX_FORM_BYTES = 16 * 1024  # astroquery's forms are ~100 bytes
DEFAULT_CUTOUT_SIZE = 5.0  # TESScut's default x and y
MAX_RADIUS_DEG = 180.0
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_ANGLE = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*", re.IGNORECASE)
_ANGLE_UNITS_DEG = {"": 1.0, "d": 1.0, "deg": 1.0, "m": 1.0 / 60.0, "s": 1.0 / 3600.0}
_PIXEL_UNITS = ("px", "pixel", "pixels")


class TesscutBadRequest(ServiceError):
    """A parameter TESScut would reject; the problem carries TESScut's ``msg`` too."""

    status, title, slug = 400, "Bad request", "tesscut-bad-request"

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"msg": message})


class FormTooLarge(ServiceError):
    """A POST body larger than any TESScut form."""

    status, title, slug = 413, "Request body too large", "body-too-large"

    def __init__(self) -> None:
        message = f"The form body is larger than {MAX_FORM_BYTES} bytes; TESScut's parameters fit in far less."
        super().__init__(message, extensions={"msg": message})


class MovingTargetsNotSupported(ServiceError):
    """Moving-target cutouts are not mirrored yet."""

    status, title, slug = 501, "Not implemented", "not-implemented"

    def __init__(self) -> None:
        message = (
            "Moving targets are not supported by this mirror yet; ask MAST's TESScut "
            "(https://mast.stsci.edu/tesscut/) for moving_target/sector and moving_target/astrocut."
        )
        super().__init__(message, extensions={"msg": message})


# ---------------------------------------------------------------------------------------------------------------
# Parameters, parsed by hand: TESScut answers bad input with a 400 and a "msg", not with FastAPI's 422.


async def _form_body(request: Request) -> bytes:
    """Return the POST body, refusing (413) one larger than `MAX_FORM_BYTES` before and while reading it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not re.fullmatch(r"[0-9]+", declared.strip()):
            raise TesscutBadRequest(f"Invalid Content-Length: {declared!r}")
        if int(declared) > MAX_FORM_BYTES:
            raise FormTooLarge()
    body = bytearray()
    async for chunk in request.stream():  # a chunked body has no Content-Length: count as it arrives
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge()
    return bytes(body)


async def request_params(request: Request) -> dict[str, str]:
    """Return the query-string and (POST) form parameters, the form winning; the first of repeated values."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, value)
    if request.method == "POST":
        body = await _form_body(request)
        content_type = request.headers.get("content-type", "")
        if body and ("form-urlencoded" in content_type or not content_type):
            form: dict[str, str] = {}
            for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                form.setdefault(name, value)
            params.update(form)
    return params


def parse_number(params: dict[str, str], name: str, *, default: float | None = None) -> float:
    """Return a finite number parameter; 400 when it is missing (without a default) or malformed."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        if default is None:
            raise TesscutBadRequest(f"Missing required parameter: {name}")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TesscutBadRequest(f"Invalid {name}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise TesscutBadRequest(f"Invalid {name}: {raw!r}")
    return value


def parse_position(params: dict[str, str]) -> tuple[float, float]:
    """Return (RA in [0, 360), Dec) in degrees."""
    ra = parse_number(params, "ra")
    dec = parse_number(params, "dec")
    if not -90.0 <= dec <= 90.0:
        raise TesscutBadRequest(f"Invalid dec: {dec} is outside [-90, 90]")
    return ra % 360.0, dec


def parse_radius_px(raw: str | None) -> float:
    """Return the ``sector`` radius in pixels: bare degrees, or a number with unit d, m, s or px."""
    if raw is None or raw.strip() == "":
        return 0.0
    found = _ANGLE.fullmatch(raw)
    if found is None:
        raise TesscutBadRequest(f"Invalid radius: {raw!r}")
    value, unit = float(found.group(1)), found.group(2).lower()
    if not math.isfinite(value):  # "1e400" matches the number pattern and overflows to inf
        raise TesscutBadRequest(f"Invalid radius: {raw!r}")
    if value < 0:
        raise TesscutBadRequest(f"Invalid radius: {raw!r} is negative")
    if unit == "px":
        radius_px = value
    elif unit in _ANGLE_UNITS_DEG:
        radius_px = value * _ANGLE_UNITS_DEG[unit] / PIXEL_SCALE_DEG
    else:
        raise TesscutBadRequest(f"Invalid radius unit {unit!r}: use d, m, s or px")
    # Past 180 degrees a radius covers the whole sky already; a larger number only risks upstream overflow.
    return min(radius_px, MAX_RADIUS_DEG / PIXEL_SCALE_DEG)


def parse_cutout_size(params: dict[str, str]) -> tuple[int, int]:
    """Return (nx, ny) in pixels from ``x`` (columns), ``y`` (rows) and ``units`` (px, or d, m, s)."""
    units = (params.get("units") or "px").strip().lower()
    x = parse_number(params, "x", default=DEFAULT_CUTOUT_SIZE)
    y = parse_number(params, "y", default=DEFAULT_CUTOUT_SIZE)
    if x <= 0 or y <= 0:
        raise TesscutBadRequest("Invalid cutout size: x and y must be positive")
    if units in _PIXEL_UNITS:
        sizes = (round(x), round(y))
    elif units in _ANGLE_UNITS_DEG and units:
        # An angular size covers at least that much sky: whole 21" pixels, rounded up.
        scale = _ANGLE_UNITS_DEG[units] / PIXEL_SCALE_DEG
        if not math.isfinite(x * scale * y * scale):
            raise TesscutBadRequest(
                f"Requested cutout of {x} x {y} {units} exceeds the maximum of {MAX_CUTOUT_PIXELS:,} pixels."
            )
        sizes = (math.ceil(x * scale - 1e-9), math.ceil(y * scale - 1e-9))
    else:
        raise TesscutBadRequest(f"Invalid units {units!r}: use px or d")
    nx, ny = max(1, sizes[0]), max(1, sizes[1])
    if nx * ny > MAX_CUTOUT_PIXELS:
        raise TesscutBadRequest(
            f"Requested cutout of {nx} x {ny} = {nx * ny} pixels exceeds the maximum of {MAX_CUTOUT_PIXELS:,} pixels."
        )
    return nx, ny


def parse_sector(params: dict[str, str]) -> int | None:
    """Return the optional ``sector``."""
    raw = params.get("sector")
    if raw is None or raw.strip() == "":
        return None
    try:
        sector = int(raw)
    except ValueError:
        raise TesscutBadRequest(f"Invalid sector: {raw!r}") from None
    if sector < 1:
        raise TesscutBadRequest(f"Invalid sector: {raw!r}")
    return sector


# ---------------------------------------------------------------------------------------------------------------
# OpenAPI: the parameters are documented by hand, since FastAPI must not validate them (see above).


def _query(name: str, description: str, example: Any, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
        "example": example,
    }


# name -> (description, example, JSON schema, required)
ParamDoc = tuple[str, Any, dict[str, Any], bool]
_POSITION: dict[str, ParamDoc] = {
    "ra": (
        "Right ascension, degrees (ICRS); any finite number, taken modulo 360 as TESScut does.",
        340.8004,
        {"type": "number"},
        True,
    ),
    "dec": ("Declination, degrees (ICRS).", -36.3439, {"type": "number", "minimum": -90, "maximum": 90}, True),
}
# What `parse_radius_px` reads: an optional non-negative number with an optional unit, letters in any case.
RADIUS_PATTERN = r"^\s*(\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*([dD]([eE][gG])?|[mMsS]|[pP][xX])?\s*)?$"
_SECTOR_PARAMS: dict[str, ParamDoc] = {
    **_POSITION,
    "radius": (
        "Search radius: bare degrees, or a finite, non-negative number with unit `d`, `m`, `s` or `px` (21″); "
        "sectors whose FFIs come within it are listed, as TESScut does. Radii past 180 degrees are taken as 180.",
        "0",
        {"type": "string", "pattern": RADIUS_PATTERN},
        False,
    ),
}
_SIZE_RULE = f"`x` × `y`, in whole pixels, at most {MAX_CUTOUT_PIXELS:,} (else 400)."
_ASTROCUT_PARAMS: dict[str, ParamDoc] = {
    **_POSITION,
    "x": (
        f"Cutout width (columns), in `units`; default 5. {_SIZE_RULE}",
        5,
        {"type": "number", "exclusiveMinimum": 0},
        False,
    ),
    "y": (
        f"Cutout height (rows), in `units`; default 5. {_SIZE_RULE}",
        5,
        {"type": "number", "exclusiveMinimum": 0},
        False,
    ),
    "units": (
        "`px` (default) or `d` (degrees; also `m`, `s`), in any case: angular sizes become whole 21″ pixels, "
        f"rounded up. At most {MAX_CUTOUT_PIXELS:,} pixels in all.",
        "px",
        {"type": "string", "enum": ["px", "pixel", "pixels", "d", "deg", "m", "s"]},
        False,
    ),
    "sector": (
        "TESS sector; default: every sector that observed the position, one file per sector/camera/CCD.",
        1,
        {"type": "integer", "minimum": 1},
        False,
    ),
}


def _get_parameters(spec: dict[str, ParamDoc]) -> dict[str, Any]:
    return {"parameters": [_query(name, *fields) for name, fields in spec.items()]}


def _form_body_doc(spec: dict[str, ParamDoc]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            name: {**schema, "description": description} for name, (description, _, schema, _) in spec.items()
        },
        "required": [name for name, (_, _, _, required) in spec.items() if required],
    }
    example = {name: example for name, (_, example, _, _) in spec.items()}
    return {
        "requestBody": {
            # Required as astroquery sends it; the service also reads the query string, so a POST that carries
            # its parameters there works too (the form winning), but then `ra`/`dec` must be in one of the two.
            "required": True,
            "description": f"The parameters as an `application/x-www-form-urlencoded` form (at most {MAX_FORM_BYTES} "
            "bytes, else 413), as astroquery sends them; query-string parameters are read too, the form winning.",
            "content": {"application/x-www-form-urlencoded": {"schema": schema, "example": example}},
        }
    }


def _problem(status: int, description: str, message: str) -> dict[int | str, dict[str, Any]]:
    example = {
        "type": "urn:tess-service:problem:example",
        "title": {400: "Bad request", 413: "Request body too large", 501: "Not implemented"}[status],
        "status": status,
        "detail": message,
        "instance": f"{PREFIX}/astrocut",
        "retryable": False,
        "msg": message,
    }
    return {
        status: {
            "description": description,
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}, "example": example}
            },
        }
    }


_BAD_REQUEST = _problem(
    400,
    "A parameter TESScut would reject (missing or malformed numbers, bad units, over 10,000 pixels). The problem "
    "also carries TESScut's `msg`.",
    "Requested cutout of 101 x 100 = 10100 pixels exceeds the maximum of 10,000 pixels.",
)
_TOO_LARGE = _problem(
    413,
    f"The form body is larger than {MAX_FORM_BYTES} bytes.",
    f"The form body is larger than {MAX_FORM_BYTES} bytes; TESScut's parameters fit in far less.",
)
_NOT_IMPLEMENTED = _problem(501, "Moving targets are not mirrored yet.", MovingTargetsNotSupported().detail)

_SECTOR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every sector/camera/CCD that observed the position, as TESScut writes them: strings, the "
        "sector zero-padded (an empty list when none did).",
        "content": {
            "application/json": {
                "example": {"results": [{"sectorName": "tess-s0001-1-2", "sector": "0001", "camera": "1", "ccd": "2"}]}
            }
        },
    },
    **_BAD_REQUEST,
    **problem_responses(*UPSTREAM_PROBLEMS),
}
_ASTROCUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A zip (whatever `Accept` says) with one target pixel file per sector/camera/CCD, named as "
        "TESScut named them, e.g. `tess-s0001-1-2_340.8004000_-36.3439000_5-x-5_astrocut.fits`; `X-Cache` says "
        'whether every file came from the cache. When no FFI holds the position: JSON `{"msg": ...}`, as TESScut.',
        "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"example": {"msg": NO_DATA_MESSAGE}},
        },
    },
    304: {"description": "The client's copy (`If-None-Match`) is current."},
    **_BAD_REQUEST,
    **problem_responses(*UPSTREAM_PROBLEMS),
}
_POST_ONLY: dict[int | str, dict[str, Any]] = {**_TOO_LARGE}


# ---------------------------------------------------------------------------------------------------------------
# Routes


def _mirror(services: Services) -> TesscutMirror:
    # At most just under astroquery's default 600-s timeout: past it the client has gone; the job goes on.
    return TesscutMirror(
        services.cutouts, wait_s=min(services.settings.tesscut_deadline_s, services.settings.tesscut_mirror_wait_s)
    )


async def _sector(request: Request, services: Services) -> Response:
    params = await request_params(request)
    ra, dec = parse_position(params)
    radius_deg = parse_radius_px(params.get("radius")) * PIXEL_SCALE_DEG
    results = await _mirror(services).sector_results(ra, dec, radius_deg)
    return Response(
        orjson.dumps({"results": results}), media_type="application/json", headers={"Cache-Control": "no-cache"}
    )


def result_url(plan: CutoutPlan) -> str:
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


async def _astrocut(request: Request, services: Services) -> Response:
    params = await request_params(request)
    ra, dec = parse_position(params)
    nx, ny = parse_cutout_size(params)
    cutout = MirrorCutout(ra, dec, nx, ny, parse_sector(params))
    archive = await _mirror(services).cutout_zip(cutout, result_url)
    if archive is None:
        return Response(
            orjson.dumps({"msg": NO_DATA_MESSAGE}), media_type="application/json", headers={"Cache-Control": "no-store"}
        )
    return _zip_response(request, services, cutout, archive)


_SECTOR_SUMMARY = "TESScut: sectors that observed a position"
_SECTOR_DESCRIPTION = (
    "TESScut's `sector` lookup, answered from the cache `/sectors` uses (same entry, same upstream call on a miss)."
)
_ASTROCUT_SUMMARY = "TESScut: FFI cutouts as a zip"
_ASTROCUT_DESCRIPTION = (
    "TESScut's `astrocut`: a zip of target pixel files, one per sector/camera/CCD, made from the same cache entries "
    "as `/cutout` (a square cutout fetched by either is a cache hit for the other). Without `sector`, every sector "
    "that observed the position, each fetched and cached on its own. The request waits for TESScut (no 202)."
)


@router.get(
    "/sector",
    summary=_SECTOR_SUMMARY,
    description=_SECTOR_DESCRIPTION,
    responses=_SECTOR_RESPONSES,
    openapi_extra=_get_parameters(_SECTOR_PARAMS),
)
async def sector_get(request: Request, services: ServicesDep) -> Response:
    """TESScut ``sector`` with a query string."""
    return await _sector(request, services)


@router.post(
    "/sector",
    summary=_SECTOR_SUMMARY + " (form)",
    description=_SECTOR_DESCRIPTION + " astroquery's `Tesscut.get_sectors` sends this form.",
    responses={**_SECTOR_RESPONSES, **_POST_ONLY},
    openapi_extra=_form_body_doc(_SECTOR_PARAMS),
)
async def sector_post(request: Request, services: ServicesDep) -> Response:
    """TESScut ``sector`` with a form body."""
    return await _sector(request, services)


@router.get(
    "/astrocut",
    summary=_ASTROCUT_SUMMARY,
    description=_ASTROCUT_DESCRIPTION + " astroquery's `Tesscut.download_cutouts` sends this GET.",
    responses=_ASTROCUT_RESPONSES,
    openapi_extra=_get_parameters(_ASTROCUT_PARAMS),
)
async def astrocut_get(request: Request, services: ServicesDep) -> Response:
    """TESScut ``astrocut`` with a query string."""
    return await _astrocut(request, services)


@router.post(
    "/astrocut",
    summary=_ASTROCUT_SUMMARY + " (form)",
    description=_ASTROCUT_DESCRIPTION + " astroquery's `Tesscut.get_cutouts` sends this form.",
    responses={**_ASTROCUT_RESPONSES, **_POST_ONLY},
    openapi_extra=_form_body_doc(_ASTROCUT_PARAMS),
)
async def astrocut_post(request: Request, services: ServicesDep) -> Response:
    """TESScut ``astrocut`` with a form body."""
    return await _astrocut(request, services)


_MOVING: dict[str, ParamDoc] = {
    "obj_id": ("JPL Horizons name or id of the moving target.", "Eleonora", {"type": "string"}, True),
    "obj_type": ("`majorbody` or `smallbody`.", "small_body", {"type": "string"}, False),
}


def _moving_target_route(path: str, what: str) -> None:
    summary = f"TESScut: moving-target {what} (not supported yet)"
    description = f"TESScut's `moving_target/{what}`: answered 501 until moving targets are mirrored."

    async def moving_target(request: Request) -> Response:
        raise MovingTargetsNotSupported()

    for method, extra in (("GET", _get_parameters(_MOVING)), ("POST", _form_body_doc(_MOVING))):
        router.add_api_route(
            path,
            moving_target,
            methods=[method],
            name=f"moving_target_{what}_{method.lower()}",
            summary=summary + (" (form)" if method == "POST" else ""),
            description=description,
            status_code=501,  # its only answer: no "200" in the OpenAPI document
            response_class=Response,
            responses=_NOT_IMPLEMENTED,
            openapi_extra=extra,
        )


_moving_target_route("/moving_target/sector", "sector")
_moving_target_route("/moving_target/astrocut", "astrocut")

# Every method each path serves, for `SharedPathRoute`'s Allow (the app's copies of the routes keep these paths).
_METHODS_BY_PATH: dict[str, set[str]] = {}
for _route in router.routes:
    if isinstance(_route, APIRoute) and _route.methods:
        _METHODS_BY_PATH.setdefault(_route.path, set()).update(_route.methods)
