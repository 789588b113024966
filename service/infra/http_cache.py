"""HTTP caching semantics for cached bodies: strong ETags, ``If-None-Match`` → 304, ``X-Cache``."""

from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from service.infra.cache import CachedBody
from service.infra.head import is_head_request
from service.infra.threads import Limiters, run_blocking


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Return whether an ``If-None-Match`` header matches ``etag`` (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag.removeprefix("W/") in candidates


async def _stream(body: CachedBody, limiters: Limiters) -> AsyncIterator[bytes]:
    chunks = body.chunks()
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
    """Answer ``request`` with ``body``: 304 when the client's copy is current, else the payload.

    ``immutable`` marks answers that can never change for this URL (e.g. a cutout of a named sector);
    ``max_age_cap_s`` shortens client caching of answers that depend on something fresher than the entry (e.g.
    "the latest sector", which changes when the sector list does).
    """
    meta = body.meta
    max_age = meta.max_age_s() if max_age_cap_s is None else min(meta.max_age_s(), max_age_cap_s)
    headers = {
        "ETag": meta.etag,
        "Cache-Control": f"public, max-age={max_age}" + (", immutable" if immutable else ""),
        "X-Cache": "HIT" if hit else "MISS",
        **meta.headers,
    }
    if vary:
        headers["Vary"] = vary
    if etag_matches(request.headers.get("if-none-match"), meta.etag):
        body.close()
        return Response(status_code=304, headers=headers)
    if is_head_request(request.scope):
        body.close()  # the headers are the whole answer: do not read the file
        headers["Content-Length"] = str(meta.size)
        return Response(status_code=200, media_type=meta.media_type, headers=headers)
    if body.data is not None:
        return Response(body.data, media_type=meta.media_type, headers=headers)
    headers["Content-Length"] = str(meta.size)
    return StreamingResponse(_stream(body, limiters), media_type=meta.media_type, headers=headers)
