"""HTTP semantics for cached bodies: strong ETags, ``If-None-Match`` → 304, a ``Range`` → 206, ``X-Cache``, stale."""

from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Literal

import anyio
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.infra.byte_ranges import UNSATISFIABLE, ByteRange, if_range_holds, requested_range
from service.infra.cache import CachedBody
from service.infra.head import is_head_request
from service.infra.problem_json import Problem, problem_response
from service.infra.threads import Limiters, run_blocking

# RFC 9111 obsoletes Warning, but caches and clients still read it; 111 because revalidating (refetching) failed.
STALE_WARNING = '110 - "Response is Stale", 111 - "Revalidation Failed"'
# A stale answer must not be reused by clients: they should ask again, and may get a fresh one.
STALE_CACHE_CONTROL = "public, max-age=0, must-revalidate"

# Per request: why stale data went into the answer (the first reason), set by the services through
# `note_stale_served` and read by `StaleMarkingMiddleware`.
_stale_reasons: ContextVar[list[str] | None] = ContextVar("stale_reasons", default=None)


def note_stale_served(reason: str) -> None:
    """Record that the current request's answer uses data served stale because upstream failed."""
    reasons = _stale_reasons.get()
    if reasons is not None and not reasons:
        reasons.append(reason)


def stale_headers(reason: str) -> dict[str, str]:
    """Return the headers that mark an answer as stale: ``X-Cache: STALE``, ``Warning``, ``X-Stale-Reason``."""
    return {
        "X-Cache": "STALE",
        "Warning": STALE_WARNING,
        "X-Stale-Reason": reason,
        "Cache-Control": STALE_CACHE_CONTROL,
    }


class StaleMarkingMiddleware:
    """Mark a successful answer stale when data served stale went into it, whatever route made it.

    `cached_response` marks bodies that are stale themselves; this catches answers built from stale data by
    other means (e.g. the TESScut mirror's sector list) or selected through it (a short TCE id resolved from a
    stale TCE list). Pure ASGI: one context variable and one check per response start.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, marking the response's headers when a stale reason was noted before they go out."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reasons: list[str] = []
        token = _stale_reasons.set(reasons)

        async def send_marked(message: Message) -> None:
            if reasons and message["type"] == "http.response.start" and 200 <= message["status"] < 400:
                headers = MutableHeaders(scope=message)
                if headers.get("x-cache") != "STALE":
                    keep_no_store = "no-store" in headers.get("cache-control", "")
                    for name, value in stale_headers(reasons[0]).items():
                        if not (name == "Cache-Control" and keep_no_store):
                            headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_marked)
        finally:
            _stale_reasons.reset(token)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Return whether an ``If-None-Match`` header matches ``etag`` (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag.removeprefix("W/") in candidates


async def _stream(body: CachedBody, limiters: Limiters, part: ByteRange | None = None) -> AsyncIterator[bytes]:
    chunks = body.chunks() if part is None else body.chunks(part.first, part.length)
    try:
        while chunk := await run_blocking(next, chunks, None, limiter=limiters.io):
            yield chunk
    finally:
        # Shielded: a client that disconnects cancels the stream, and the file must still be closed.
        with anyio.CancelScope(shield=True):
            await run_blocking(chunks.close, limiter=limiters.io)


def cached_response(
    request: Request,
    body: CachedBody,
    *,
    hit: bool,
    limiters: Limiters,
    vary: str | None = None,
    immutable: bool = False,
    max_age_cap_s: int | None = None,
) -> Response:
    """Answer ``request`` with ``body``: 304 when the client's copy is current, 206 for one range, else the payload.

    ``immutable`` marks answers that can never change for this URL (e.g. a cutout of a named sector);
    ``max_age_cap_s`` shortens client caching of answers that depend on something fresher than the entry (e.g.
    "the latest sector", which changes when the sector list does). A stale body (served because upstream failed)
    is marked so, with ``max-age=0``, whatever the other arguments say.

    Ranges (``Accept-Ranges: bytes``, what a browser needs to seek a ``<video>``): one range of a GET is answered
    206 with only its bytes, read from the file at its offset; a range past the end is 416; several ranges, or an
    ``If-Range`` that does not match the ETag, get the whole payload (see `byte_ranges`).
    """
    meta = body.meta
    max_age = meta.max_age_s() if max_age_cap_s is None else min(meta.max_age_s(), max_age_cap_s)
    headers = {
        "ETag": meta.etag,
        "Cache-Control": f"public, max-age={max_age}" + (", immutable" if immutable else ""),
        "X-Cache": "HIT" if hit else "MISS",
        **meta.headers,
    }
    if body.stale_reason is not None:
        headers.update(stale_headers(body.stale_reason))
    if vary:
        headers["Vary"] = vary
    if etag_matches(request.headers.get("if-none-match"), meta.etag):
        body.close()
        return Response(status_code=304, headers=headers)
    headers["Accept-Ranges"] = "bytes"
    if is_head_request(request.scope):
        body.close()  # the headers are the whole answer: do not read the file
        headers["Content-Length"] = str(meta.size)
        return Response(status_code=200, media_type=meta.media_type, headers=headers)
    part = _range_asked(request, meta.etag, meta.size)
    if part == UNSATISFIABLE:
        body.close()
        return _range_not_satisfiable(request, meta.size)
    if isinstance(part, ByteRange):
        headers["Content-Range"] = part.content_range
        if body.data is not None:
            return Response(body.data[part.first : part.last + 1], 206, headers, meta.media_type)
        headers["Content-Length"] = str(part.length)
        return StreamingResponse(_stream(body, limiters, part), 206, headers, meta.media_type)
    if body.data is not None:
        return Response(body.data, media_type=meta.media_type, headers=headers)
    headers["Content-Length"] = str(meta.size)
    return StreamingResponse(_stream(body, limiters), media_type=meta.media_type, headers=headers)


def _range_asked(request: Request, etag: str, size: int) -> ByteRange | Literal["unsatisfiable"] | None:
    """Return the range to serve, `UNSATISFIABLE`, or None (the whole payload)."""
    if not if_range_holds(request.headers.get("if-range"), etag):
        return None
    return requested_range(request.headers.get("range"), size)


def _range_not_satisfiable(request: Request, size: int) -> Response:
    response = problem_response(
        Problem(
            status=416,
            title="Range Not Satisfiable",
            slug="range-not-satisfiable",
            detail=f"No byte of the range {request.headers.get('range')!r} is in this answer of {size} bytes.",
        ).body(request.url.path)
    )
    response.headers["Content-Range"] = f"bytes */{size}"
    return response
