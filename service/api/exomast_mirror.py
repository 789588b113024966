"""The ExoMAST API v0.1 mirror: ``/api/v0.1/dvdata/tess/...`` as exo.mast.stsci.edu speaks it, served from our cache.

Code written for ``https://exo.mast.stsci.edu/api/v0.1/`` works unchanged with the service's base URL instead.
Errors a client causes come back as ExoMAST sends them (``{"detail": ...}`` as ``application/json``, not problem
documents), because code written for ExoMAST reads ``detail``; failures of ExoMAST itself stay problem documents
with ``Retry-After``.
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from starlette.responses import HTMLResponse, JSONResponse, Response

from service.api.problems import UPSTREAM_PROBLEMS, problem_responses
from service.deps import ServicesDep
from service.infra.http_cache import cached_response
from service.services.exomast_mirror import UpstreamStyleError, parse_star_id, parse_tce_request
from service.tces import TceRef

PREFIX = "/api/v0.1/dvdata/tess"
# A guard on what a request can make us parse; ExoMAST's own values are short ids (its parser answers 400 past that).
MAX_QUERY_VALUE_LENGTH = 1024

EXAMPLE_TCES: list[JsonValue] = ["s0001-s0003:TCE_1", "s0002-s0002:TCE_1", "s0001-s0001:TCE_1", "s0003-s0003:TCE_1"]
HIT_NOTE = (
    " `X-Cache: HIT` means answered without asking MAST: from this route's cache, or from data a clean route "
    "(`/tic/...`) already fetched; the two share one cache."
)


class UpstreamStyleRoute(APIRoute):
    """A route whose client errors look like ExoMAST's: ``{"detail": ...}``, validation errors included."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so upstream-style errors bypass the app's problem+json handlers."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except UpstreamStyleError as exc:
                return JSONResponse({"detail": exc.detail}, exc.status, headers={"Cache-Control": "no-store"})
            except RequestValidationError as exc:
                # ExoMAST is a FastAPI app: its validation errors are FastAPI's default 422 body.
                response = await request_validation_exception_handler(request, exc)
                response.headers["Cache-Control"] = "no-store"
                return response

        return handle


router = APIRouter(tags=["ExoMAST mirror"], route_class=UpstreamStyleRoute)


# --- documentation: ExoMAST's wire shapes (not the service's own schemas) ---------------------------------------


class ExoMastTceList(BaseModel):
    """ExoMAST's TCE list."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"TCE": EXAMPLE_TCES}]})

    TCE: list[str] = Field(description="TCE ids `sNNNN-sNNNN:TCE_n`, in ExoMAST's order (not sorted).")


class ExoMastDvInfo(BaseModel):
    """ExoMAST's DV headers of one TCE."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "DV Primary Header": {"OBJECT": "TIC 214568914", "TESSMAG": 11.2, "TEFF": 5710.0},
                    "DV Data Header": {"EXTNAME": "TCE_1", "TPERIOD": 4.01, "RA_OBJ": 97.05, "DEC_OBJ": -61.41},
                    "TCE": ["s0001-s0001:TCE_1"],
                }
            ]
        },
    )

    primary: dict[str, Any] = Field(alias="DV Primary Header", description="The DVT file's primary header.")
    data: dict[str, Any] = Field(alias="DV Data Header", description="The TCE extension's header.")
    tce: list[str] | None = Field(None, alias="TCE", description="The TIC's TCE list, only with `list_tce`.")


class ExoMastDvField(BaseModel):
    """One column of ExoMAST's DV table."""

    colname: str = Field(description="Column name.")
    datatype: str = Field(description="`int`, `real` or `varchar(N)`.")
    description: str = Field(description="What the column holds.")


class ExoMastDvTable(BaseModel):
    """ExoMAST's DV time series: the columns, then one object per cadence."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fields": [
                        {"colname": "TIME", "datatype": "real", "description": "BTJD, days"},
                        {"colname": "LC_DETREND", "datatype": "real", "description": "detrended relative flux"},
                    ],
                    "data": [{"TIME": 1325.2969, "LC_DETREND": -0.00012}, {"TIME": 1325.2983, "LC_DETREND": None}],
                }
            ]
        }
    )

    fields: list[ExoMastDvField] = Field(description="The columns, in order, as ExoMAST describes them.")
    data: list[dict[str, Any]] = Field(description="One object per cadence; missing values are null.")


def _detail_error(description: str, detail: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"detail": {}}, "required": ["detail"]},
                "example": {"detail": detail},
            }
        },
    }


_VALIDATION_ERROR = _detail_error(
    "A query value is longer than the mirror accepts (FastAPI's validation body, as ExoMAST sends).",
    [{"type": "string_too_long", "loc": ["query", "tce"], "msg": "String should have at most 64 characters"}],
)
_BAD_STAR_ID = _detail_error(
    "`star_id` is not a TIC id.", "Invalid TESS star id 'WASP-18': expected a TIC id of 1 to 11 digits"
)
# What `info/`, `table/` and `phaseplot/` answer besides their 200: all name one TCE the same way.
_TCE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _detail_error(
        "`sector` or `tce` is missing or malformed, or `star_id` is not a TIC id.", "Missing sector in TESS request"
    ),
    404: _detail_error(
        "ExoMAST has no DV data for this star, or not this TCE.",
        "No TCE_3 found for TIC 214568914 in sectors s0001-s0001",
    ),
    422: _VALIDATION_ERROR,
    **problem_responses(*UPSTREAM_PROBLEMS),
}


# --- parameters -------------------------------------------------------------------------------------------------

StarIdPath = Annotated[
    str,
    Path(
        description="TIC id, 1–11 digits; zero-padded (`00214568914`) and plain forms are the same star.",
        openapi_examples={
            "padded": {"summary": "Zero-padded, as the TESScut-ExoMAST tutorial writes it", "value": "00214568914"},
            "plain": {"summary": "Plain (WASP-18)", "value": "100100827"},
        },
    ),
]


def _mirror_query(description: str, **examples: tuple[str, str]) -> Any:
    """Return an optional query parameter of the mirror: bounded in length, with (summary, value) examples."""
    return Query(
        max_length=MAX_QUERY_VALUE_LENGTH,
        description=description,
        openapi_examples={name: {"summary": summary, "value": value} for name, (summary, value) in examples.items()},
    )


TceQuery = Annotated[
    str | None,
    _mirror_query(
        "The TCE: `TCE_1` or `1`. Without `sector`, a whole TCE-list entry `s0001-s0001:TCE_1` is also accepted (the "
        "published TESScut-ExoMAST tutorial sends that; ExoMAST itself answers 400); with `sector`, only `TCE_n` or "
        "`n` is (400 otherwise). Required: 400 'Missing tce in request' without it.",
        tce=("TCE name, with sector", "TCE_1"),
        combined=("Whole TCE id, without sector", "s0001-s0001:TCE_1"),
    ),
]
SectorQuery = Annotated[
    str | None,
    _mirror_query(
        "Sector range of the DV run, `s0001-s0003`, or one sector number (`1` = `s0001-s0001`). "
        "Required (400 'Missing sector in TESS request'), except with a whole TCE id in `tce`.",
        range=("Sector range", "s0001-s0003"),
        number=("One sector", "1"),
    ),
]
ListTceQuery = Annotated[
    str | None,
    _mirror_query(
        'A flag: present (any value, or none) adds the star\'s TCE list as `"TCE"`.',
        flag=("Present without a value", ""),
    ),
]
EmbedQuery = Annotated[
    str | None,
    _mirror_query(
        "A flag, like `list_tce`: present (any value, or none) answers an embeddable fragment instead of a whole page.",
        flag=("Present without a value", ""),
    ),
]
IgnoredTceQuery = Annotated[
    str | None,
    _mirror_query("Ignored, as ExoMAST ignores it (beginner_tess_exomast sends one).", ignored=("Ignored", "TCE_1")),
]


@dataclass(frozen=True)
class TceParams:
    """A TCE request's ``tce`` and ``sector`` as sent; `ref` checks them (after the star id)."""

    tce: str | None
    sector: str | None

    def ref(self) -> TceRef:
        """Return the TCE named, checked as ExoMAST checks it (400 with its ``detail`` otherwise)."""
        return parse_tce_request(self.tce, self.sector)


async def tce_params(request: Request, tce: TceQuery = None, sector: SectorQuery = None) -> TceParams:
    """Return ``tce`` and ``sector`` as ExoMAST reads them: the FIRST of repeated values (FastAPI keeps the last).

    Nothing is checked here: a dependency runs before the route, and ExoMAST rejects a bad star id first.
    """
    tces, sectors = request.query_params.getlist("tce"), request.query_params.getlist("sector")
    return TceParams(tces[0] if tces else tce, sectors[0] if sectors else sector)


async def list_tce_flag(list_tce: ListTceQuery = None) -> bool:
    """Return whether ``list_tce`` is present, with a value or without."""
    return list_tce is not None


async def embed_flag(embed: EmbedQuery = None) -> bool:
    """Return whether ``embed`` is present, with a value or without."""
    return embed is not None


TceParamsDep = Annotated[TceParams, Depends(tce_params)]
ListTceDep = Annotated[bool, Depends(list_tce_flag)]
EmbedDep = Annotated[bool, Depends(embed_flag)]


def _get_twice(path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a GET route at ``path`` with and without the trailing slash (ExoMAST takes both, no redirect)."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(path + "/", endpoint, methods=["GET"], **kwargs)
        router.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False, **kwargs)
        return endpoint

    return register


# --- routes -----------------------------------------------------------------------------------------------------


@_get_twice(
    PREFIX + "/{star_id}/tces",
    response_model=ExoMastTceList,
    summary="ExoMAST: list a star's TCEs",
    description='ExoMAST\'s `dvdata/tess/{star_id}/tces/`: `{"TCE": ["s0001-s0001:TCE_1", ...]}` in ExoMAST\'s '
    "order, so code taking `['TCE'][0]` gets the same TCE." + HIT_NOTE,
    responses={
        200: {"description": "The TCE list."},
        400: _BAD_STAR_ID,
        404: _detail_error("ExoMAST has no DV data for this star.", "No TESS DV data found for TIC 1"),
        422: _VALIDATION_ERROR,
        **problem_responses(*UPSTREAM_PROBLEMS),
    },
)
async def mirror_tces(
    request: Request,
    star_id: StarIdPath,
    services: ServicesDep,
    tce: IgnoredTceQuery = None,
) -> Response:
    """List a star's TCEs as ExoMAST does."""
    body, hit = await services.exomast_mirror.tces_response(parse_star_id(star_id))
    return cached_response(request, body, hit=hit, limiters=services.limiters)


@_get_twice(
    PREFIX + "/{star_id}/info",
    response_model=ExoMastDvInfo,
    summary="ExoMAST: a TCE's DV headers",
    description='ExoMAST\'s `dvdata/tess/{star_id}/info/`: `{"DV Primary Header": {...}, "DV Data Header": '
    '{...}}`, plus `"TCE": [...]` when `list_tce` is present (with or without a value).' + HIT_NOTE,
    responses={
        200: {"description": "The DV headers."},
        **_TCE_ERRORS,
    },
)
async def mirror_info(
    request: Request, star_id: StarIdPath, services: ServicesDep, params: TceParamsDep, list_tce: ListTceDep
) -> Response:
    """Return a TCE's DV headers as ExoMAST does."""
    tic_id = parse_star_id(star_id)
    body, hit = await services.exomast_mirror.info_response(tic_id, params.ref(), list_tce=list_tce)
    return cached_response(request, body, hit=hit, limiters=services.limiters)


@_get_twice(
    PREFIX + "/{star_id}/table",
    response_model=ExoMastDvTable,
    summary="ExoMAST: a TCE's DV time series",
    description='ExoMAST\'s `dvdata/tess/{star_id}/table/`: `{"fields": [{colname, datatype, description}], '
    '"data": [{...}, ...]}`, one object per cadence, missing values null. Several MB for multi-sector TCEs; '
    "made once from the cached DV table, then served as cached bytes." + HIT_NOTE,
    responses={
        200: {"description": "The DV time series."},
        **_TCE_ERRORS,
    },
)
async def mirror_table(request: Request, star_id: StarIdPath, services: ServicesDep, params: TceParamsDep) -> Response:
    """Return a TCE's DV time series as ExoMAST does."""
    tic_id = parse_star_id(star_id)
    body, hit = await services.exomast_mirror.table_response(tic_id, params.ref())
    return cached_response(request, body, hit=hit, limiters=services.limiters)


_PHASEPLOT_EXAMPLE = (
    '<!DOCTYPE html>\n<html lang="en">\n  <head>\n    <meta charset="utf-8">\n    <title>Phased Light Curve</title>\n'
    '<script src="/static/bokeh/static/js/bokeh.min.js"></script>\n'
    '<script src="/static/bokeh/static/js/bokeh-gl.min.js"></script>\n  </head>\n  <body>\n'
    '    <div id="ph5b1c0e9a27-0" data-root-id="ph5b1c0e9a27-1" style="display: contents;"></div>\n'
    '    <script type="application/json" id="ph5b1c0e9a27-2">{...}</script>\n    <script>...</script>\n'
    "  </body>\n</html>"
)


@_get_twice(
    PREFIX + "/{star_id}/phaseplot",
    response_class=HTMLResponse,
    summary="ExoMAST: a TCE's interactive phase plot (Bokeh HTML)",
    description="ExoMAST's `dvdata/tess/{star_id}/phaseplot/`: a standalone HTML page titled `Phased Light Curve` "
    "holding one Bokeh document: the detrended flux (`LC_DETREND`, legend `Detrended`) and the transit model "
    "(`MODEL_INIT`, `Transit Model`) in ppm against `PHASE` in days, titled like `TIC 100100827 (S0001-S0003) "
    "TCE_1`; zoom, pan and box-select in the browser, click a legend item to hide it. Unlike ExoMAST's page "
    "(BokehJS from a CDN), this one loads BokehJS from this service (`/static/bokeh/...`, root-relative paths): it "
    "asks no other origin, so it works offline.\n\n"
    "With `embed` the answer is a fragment for putting inside another page: BokehJS's `<script>` tags, the plot's "
    '`<div>`, the `<script type="application/json">` document and the script that draws it, with no `<html>`, '
    "`<head>` or `<body>`. Its BokehJS paths are root-relative too, so the page it goes into must be served from "
    "this origin; elsewhere (a notebook on another server), show the whole page in an `<iframe>` instead.\n\n"
    "Made once from the cached DV table and served as cached bytes with an ETag; the same data give the same "
    'bytes (and ETag). Errors are the other `dvdata` routes\' (400/404 `{"detail": ...}` as ExoMAST sends them; '
    "MAST failures as problem documents)." + HIT_NOTE,
    responses={
        200: {
            "description": "The phase plot: a whole HTML page, or a fragment with `embed`.",
            "content": {"text/html": {"schema": {"type": "string"}, "example": _PHASEPLOT_EXAMPLE}},
        },
        **_TCE_ERRORS,
    },
)
async def mirror_phaseplot(
    request: Request, star_id: StarIdPath, services: ServicesDep, params: TceParamsDep, embed: EmbedDep
) -> Response:
    """Return a TCE's phase plot as ExoMAST does, with BokehJS from this service."""
    tic_id = parse_star_id(star_id)
    body, hit = await services.exomast_mirror.phaseplot_response(tic_id, params.ref(), embed=embed)
    return cached_response(request, body, hit=hit, limiters=services.limiters)
