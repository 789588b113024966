"""Shared upstream plumbing: one GET that turns every transport or HTTP failure into a `ServiceError`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
import orjson

from service.errors import BadUpstreamResponse, NotFound, UpstreamError, UpstreamTimeout, UpstreamUnavailable

# How long we suggest waiting before retrying when MAST gave no Retry-After of its own.
DEFAULT_RETRY_AFTER_S = 5
_HTML_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class UpstreamBody:
    """A successful upstream answer, read whole."""

    status: int
    content_type: str
    content: bytes


MAX_RETRY_AFTER_S = 3600
# Only the start of an error body is read for its message: an error page has no business being large.
ERROR_BODY_PEEK_BYTES = 64 * 1024


def retry_after_seconds(value: str | None, default: int = DEFAULT_RETRY_AFTER_S) -> int:
    """Return an upstream ``Retry-After`` (seconds form) clamped to 1 s–1 h, or ``default`` when absent or odd."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        return max(1, min(int(value), MAX_RETRY_AFTER_S))
    return default


def _retry_after(response: httpx.Response) -> int:
    return retry_after_seconds(response.headers.get("retry-after"))


def _upstream_message(body: bytes) -> str:
    """Pull a human-readable message out of an upstream error body, whatever its shape."""
    body = body[:ERROR_BODY_PEEK_BYTES]
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        # Gateways (nginx) answer with an HTML page; its title is the message, the markup is noise.
        title = _HTML_TITLE.search(body)
        text = (title.group(1) if title else body).decode("utf-8", "replace")
        return " ".join(text.split())[:200]
    if isinstance(parsed, dict):
        for key in ("detail", "msg", "message", "error"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return str(parsed)[:200]


@dataclass(frozen=True)
class Budget:
    """What one exchange with an upstream may cost: bytes of answer, and seconds end to end.

    ``total_timeout_s`` bounds the whole exchange: httpx's read timeout is per read, so an upstream that drips
    bytes would otherwise hold the request forever. ``upstream`` names who is asked, in every error.
    """

    upstream: str
    max_bytes: int
    total_timeout_s: float

    def capped(self, seconds: float) -> Budget:
        """Return this budget with at most ``seconds`` left (what a retry deadline leaves of it)."""
        return dataclasses.replace(self, total_timeout_s=min(self.total_timeout_s, seconds))


async def request_bytes(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    budget: Budget,
    *,
    params: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
) -> UpstreamBody:
    """Send one request and return its body, or raise the matching `ServiceError`.

    The body is read in a stream so a runaway upstream cannot make us hold more than ``budget.max_bytes``.
    404 becomes `NotFound`; every other failure becomes a 502/503/504 that names the upstream.
    """
    on_wire = False

    async def trace(event: str, info: dict[str, Any]) -> None:
        # httpcore traces nothing while a request waits for a pooled connection: the first event means it has one.
        nonlocal on_wire
        on_wire = True

    try:
        async with (
            asyncio.timeout(budget.total_timeout_s),
            client.stream(method, url, params=params, data=data, extensions={"trace": trace}) as response,
        ):
            content = await _read_within(response, budget)
    except (httpx.HTTPError, TimeoutError) as exc:
        _raise_transport_error(exc, budget, on_wire=on_wire)
    _raise_for_status(response, content, budget.upstream)
    return UpstreamBody(response.status_code, response.headers.get("content-type", ""), content)


async def _read_within(response: httpx.Response, budget: Budget) -> bytes:
    """Read the body, refusing one past ``budget.max_bytes`` as soon as it is declared or received."""
    upstream, max_bytes = budget.upstream, budget.max_bytes
    declared = int(response.headers.get("content-length") or 0)
    if declared > max_bytes:
        raise BadUpstreamResponse(
            f"{upstream} sent a {declared:,}-byte answer, more than the {max_bytes:,} bytes we accept.",
            upstream=upstream,
        )
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > max_bytes:
            raise BadUpstreamResponse(
                f"{upstream} sent more than the {max_bytes:,} bytes we accept.", upstream=upstream
            )
    return bytes(buffer)


# What a transport failure means, first match wins: the error we answer, and its message after "{upstream} ".
# Every one of them may be retried after DEFAULT_RETRY_AFTER_S.
_TRANSPORT_ERRORS: tuple[tuple[tuple[type[Exception], ...], type[UpstreamError], str], ...] = (
    (
        (httpx.ConnectError, httpx.ConnectTimeout),
        UpstreamUnavailable,
        "could not be reached ({name}); try again shortly.",
    ),
    (
        (httpx.ReadTimeout, httpx.WriteTimeout),
        UpstreamTimeout,
        "did not answer in time ({name}); it may be busy, try again later.",
    ),
    (
        (httpx.RemoteProtocolError, httpx.ReadError, httpx.DecodingError, httpx.TooManyRedirects),
        BadUpstreamResponse,
        "dropped the connection before the answer was complete, or sent one we cannot follow ({name}); try again.",
    ),
    # Anything else on the way (a write or close error, a proxy): the upstream is not usable right now.
    ((httpx.HTTPError,), UpstreamUnavailable, "could not be used ({name}); try again shortly."),
)


def _raise_transport_error(exc: httpx.HTTPError | TimeoutError, budget: Budget, *, on_wire: bool) -> NoReturn:
    """Raise the `ServiceError` a failed exchange means: 503 unreachable, 504 too slow, 502 broken answer."""
    upstream = budget.upstream
    if isinstance(exc, httpx.PoolTimeout):
        raise _pool_full(upstream) from exc
    if isinstance(exc, TimeoutError):
        if not on_wire:
            # Out of time while still waiting for one of our own pooled connections: the pool timing out, in
            # effect, and said so (PoolTimeout), so the breaker does not count our congestion against MAST.
            no_connection = httpx.PoolTimeout(f"no free connection within {budget.total_timeout_s:g} s")
            raise _pool_full(upstream) from no_connection
        raise UpstreamTimeout(
            f"{upstream} did not finish answering within {budget.total_timeout_s:g} s; try again later.",
            upstream=upstream,
            retry_after_s=DEFAULT_RETRY_AFTER_S,
        ) from exc
    error, message = next((error, message) for kinds, error, message in _TRANSPORT_ERRORS if isinstance(exc, kinds))
    detail = f"{upstream} {message.format(name=type(exc).__name__)}"
    raise error(detail, upstream=upstream, retry_after_s=DEFAULT_RETRY_AFTER_S) from exc


def _pool_full(upstream: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"Too many requests to {upstream} are waiting already; try again shortly.",
        upstream=upstream,
        retry_after_s=DEFAULT_RETRY_AFTER_S,
    )


def _raise_for_status(response: httpx.Response, content: bytes, upstream: str) -> None:
    status = response.status_code
    if status < 400:
        return
    message = _upstream_message(content)
    if status == 404:
        raise NotFound(f"{upstream} has no such data: {message}")
    # Chained to httpx's own status error, so retries and breakers can read the status and Retry-After.
    cause = httpx.HTTPStatusError(f"HTTP {status}", request=response.request, response=response)
    if status in (429, 503):
        raise UpstreamUnavailable(
            f"{upstream} is overloaded or down (HTTP {status}: {message}); try again later.",
            upstream=upstream,
            retry_after_s=_retry_after(response),
        ) from cause
    if status == 504:
        raise UpstreamTimeout(
            f"{upstream}'s gateway timed out (HTTP 504); MAST is busy, try again later.",
            upstream=upstream,
            retry_after_s=_retry_after(response),
        ) from cause
    raise BadUpstreamResponse(f"{upstream} answered HTTP {status}: {message}", upstream=upstream) from cause


def parse_json(response: UpstreamBody, upstream: str) -> Any:
    """Parse a JSON body (blocking for large bodies; call from a worker thread).

    ExoMAST has served both ``application/json`` and ``text/json``, and Python-based servers may write
    bare ``NaN`` tokens; both are accepted. An HTML page or anything else that is not JSON is a 502.
    """
    content_type = response.content_type
    if "json" not in content_type:
        raise BadUpstreamResponse(
            f"{upstream} answered with content type {content_type or 'none'!r} instead of JSON.",
            upstream=upstream,
        )
    body = response.content
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        # The standard library accepts NaN/Infinity tokens, which orjson (rightly) refuses.
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadUpstreamResponse(
            f"{upstream} sent malformed JSON ({exc.__class__.__name__} at byte {getattr(exc, 'pos', '?')}).",
            upstream=upstream,
        ) from exc
