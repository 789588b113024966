"""The TESScut mirror's OpenAPI: its parameters, documented by hand (FastAPI must not validate them), and answers.

Each operation is one `Operation`; its GET (query string) and POST (form) routes are documented from it alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.api.problems import UPSTREAM_PROBLEMS, binary_content, problem_responses
from service.api.tesscut_mirror.params import MAX_FORM_BYTES, PREFIX, MovingTargetsNotSupported
from service.services.tesscut_mirror import MAX_CUTOUT_PIXELS, NO_DATA_MESSAGE

Responses = dict[int | str, dict[str, Any]]


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


def _problem(status: int, description: str, message: str) -> Responses:
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

_SECTOR_RESPONSES: Responses = {
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
_ASTROCUT_RESPONSES: Responses = {
    200: {
        "description": "A zip (whatever `Accept` says) with one target pixel file per sector/camera/CCD, named as "
        "TESScut named them, e.g. `tess-s0001-1-2_340.8004000_-36.3439000_5-x-5_astrocut.fits`; `X-Cache` says "
        'whether every file came from the cache. When no FFI holds the position: JSON `{"msg": ...}`, as TESScut.',
        "content": {
            **binary_content("application/zip"),
            "application/json": {"example": {"msg": NO_DATA_MESSAGE}},
        },
    },
    304: {"description": "The client's copy (`If-None-Match`) is current."},
    **_BAD_REQUEST,
    **problem_responses(*UPSTREAM_PROBLEMS),
}

_MOVING: dict[str, ParamDoc] = {
    "obj_id": ("JPL Horizons name or id of the moving target.", "Eleonora", {"type": "string"}, True),
    "obj_type": ("`majorbody` or `smallbody`.", "small_body", {"type": "string"}, False),
}


@dataclass(frozen=True)
class Operation:
    """How one TESScut operation is documented: its GET and POST routes differ only in where parameters travel."""

    summary: str
    description: str
    params: dict[str, ParamDoc]
    responses: Responses
    get_note: str = ""  # added to the GET route's description
    post_note: str = ""  # added to the POST route's description
    reads_form: bool = True  # a POST whose form is read may be refused as too large (413)

    def route_docs(self, method: str) -> dict[str, Any]:
        """Return the `add_api_route` keywords that document this operation's GET or POST route."""
        if method == "GET":
            return {
                "summary": self.summary,
                "description": self.description + self.get_note,
                "responses": self.responses,
                "openapi_extra": _get_parameters(self.params),
            }
        return {
            "summary": self.summary + " (form)",
            "description": self.description + self.post_note,
            "responses": {**self.responses, **_TOO_LARGE} if self.reads_form else self.responses,
            "openapi_extra": _form_body_doc(self.params),
        }


SECTOR = Operation(
    summary="TESScut: sectors that observed a position",
    description="TESScut's `sector` lookup, answered from the cache `/sectors` uses (same entry, same upstream call "
    "on a miss).",
    params=_SECTOR_PARAMS,
    responses=_SECTOR_RESPONSES,
    post_note=" astroquery's `Tesscut.get_sectors` sends this form.",
)
ASTROCUT = Operation(
    summary="TESScut: FFI cutouts as a zip",
    description="TESScut's `astrocut`: a zip of target pixel files, one per sector/camera/CCD, made from the same "
    "cache entries as `/cutout` (a square cutout fetched by either is a cache hit for the other). Without `sector`, "
    "every sector that observed the position, each fetched and cached on its own. The request waits for TESScut "
    "(no 202).",
    params=_ASTROCUT_PARAMS,
    responses=_ASTROCUT_RESPONSES,
    get_note=" astroquery's `Tesscut.download_cutouts` sends this GET.",
    post_note=" astroquery's `Tesscut.get_cutouts` sends this form.",
)


def moving_target(what: str) -> Operation:
    """Return the documentation of ``moving_target/{what}``, which only answers 501 for now."""
    return Operation(
        summary=f"TESScut: moving-target {what} (not supported yet)",
        description=f"TESScut's `moving_target/{what}`: answered 501 until moving targets are mirrored.",
        params=_MOVING,
        responses=_NOT_IMPLEMENTED,
        reads_form=False,  # nothing is read: no 413
    )
