"""OpenAPI descriptions shared by the routers: the problem answers, binary bodies, and a job's 202."""

from typing import Any

from service.schemas import JobView

# A cutout-backed product whose cutout is not cached yet answers 202 with its job.
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "The cutout is still being fetched: poll `Location` (/jobs/{id}); `then` serves the result.",
        "model": JobView,
    }
}

_EXAMPLES: dict[int, tuple[str, dict[str, Any]]] = {
    404: (
        "The TIC or TCE does not exist at MAST.",
        {"title": "Not found", "detail": "TIC 1 has no Threshold Crossing Events in ExoMAST's TESS DV data."},
    ),
    406: (
        "The Accept header allows none of the formats this route serves.",
        {"title": "Not acceptable", "detail": "Accept 'image/png' allows none of application/json, text/csv."},
    ),
    409: (
        "A short TCE id matches several TCEs; the problem lists the full ids.",
        {
            "title": "Ambiguous request",
            "detail": "TCE_1 of TIC 100100827 is ambiguous: it was found by 4 searches.",
            "candidates": ["s0001-s0001:TCE_1", "s0001-s0003:TCE_1"],
        },
    ),
    416: (
        "The `Range` header asks only for bytes past the end; `Content-Range: bytes */{length}` gives the length.",
        {
            "title": "Range Not Satisfiable",
            "detail": "No byte of the range 'bytes=90000-' is in this answer of 81867 bytes.",
        },
    ),
    422: (
        "A parameter is malformed or out of range.",
        {"title": "Invalid request", "detail": "path parameter 'tic_id': String should match pattern '^[0-9]{1,11}$'"},
    ),
    502: (
        "MAST answered with an error or a body that cannot be used.",
        {"title": "Bad upstream response", "detail": "ExoMAST sent malformed JSON.", "upstream": "ExoMAST"},
    ),
    503: (
        "MAST cannot be reached or is overloaded; retry after `Retry-After` seconds.",
        {
            "title": "Upstream unavailable",
            "detail": "ExoMAST could not be reached (ConnectError); try again shortly.",
            "upstream": "ExoMAST",
            "retry_after_s": 5,
        },
    ),
    504: (
        "MAST did not answer in time; retry later.",
        {
            "title": "Upstream timeout",
            "detail": "ExoMAST's gateway timed out (HTTP 504); MAST is busy, try again later.",
            "upstream": "ExoMAST",
            "retry_after_s": 5,
        },
    ),
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the `responses=` entries documenting these problem statuses with an example each."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, example = _EXAMPLES[status]
        body = {"type": "urn:tess-service:problem:example", "status": status, "instance": "/tic/1/tces"}
        body |= {"retryable": status >= 500} | example
        out[status] = {
            "description": description,
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}, "example": body}
            },
        }
    return out


UPSTREAM_PROBLEMS = (502, 503, 504)


def binary_content(*media_types: str) -> dict[str, dict[str, Any]]:
    """Return the OpenAPI ``content`` of a binary body in each of ``media_types``."""
    return {media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in media_types}


def binary_answer(description: str, *media_types: str) -> dict[str, Any]:
    """Return the OpenAPI description of an answer whose body is binary in each of ``media_types``."""
    return {"description": description, "content": binary_content(*media_types)}
