"""Shared upstream plumbing: one GET that turns every transport or HTTP failure into a `ServiceError`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from service.errors import BadUpstreamResponse, NotFound, UpstreamTimeout, UpstreamUnavailable

# How long we suggest waiting before retrying when MAST gave no Retry-After of its own.
DEFAULT_RETRY_AFTER_S = 5
_HTML_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class UpstreamBody:
    """A successful upstream answer, read whole."""

    status: int
    content_type: str
    content: bytes


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() else DEFAULT_RETRY_AFTER_S


def _upstream_message(body: bytes) -> str:
    """Pull a human-readable message out of an upstream error body, whatever its shape."""
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


async def get_bytes(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: dict[str, str] | None,
    upstream: str,
    max_bytes: int,
) -> UpstreamBody:
    """GET ``url`` and return its body, or raise the matching `ServiceError`.

    The body is read in a stream so a runaway upstream cannot make us hold more than ``max_bytes``.
    404 becomes `NotFound`; every other failure becomes a 502/503/504 that names ``upstream``.
    """
    try:
        async with client.stream("GET", url, params=params) as response:
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise BadUpstreamResponse(
                    f"{upstream} sent a {declared:,}-byte answer, more than the {max_bytes:,} bytes we accept.",
                    upstream=upstream,
                )
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise BadUpstreamResponse(
                        f"{upstream} sent more than the {max_bytes:,} bytes we accept.", upstream=upstream
                    )
                chunks.append(chunk)
            content = b"".join(chunks)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise UpstreamUnavailable(
            f"{upstream} could not be reached ({type(exc).__name__}); try again shortly.",
            upstream=upstream,
            retry_after_s=DEFAULT_RETRY_AFTER_S,
        ) from exc
    except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
        raise UpstreamTimeout(
            f"{upstream} did not answer in time ({type(exc).__name__}); it may be busy, try again later.",
            upstream=upstream,
            retry_after_s=DEFAULT_RETRY_AFTER_S,
        ) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.DecodingError) as exc:
        raise BadUpstreamResponse(
            f"{upstream} dropped the connection before the answer was complete; try again.",
            upstream=upstream,
            retry_after_s=DEFAULT_RETRY_AFTER_S,
        ) from exc
    _raise_for_status(response, content, upstream)
    return UpstreamBody(response.status_code, response.headers.get("content-type", ""), content)


def _raise_for_status(response: httpx.Response, content: bytes, upstream: str) -> None:
    status = response.status_code
    if status < 400:
        return
    message = _upstream_message(content)
    if status == 404:
        raise NotFound(f"{upstream} has no such data: {message}")
    if status in (429, 503):
        raise UpstreamUnavailable(
            f"{upstream} is overloaded or down (HTTP {status}: {message}); try again later.",
            upstream=upstream,
            retry_after_s=_retry_after(response),
        )
    if status == 504:
        raise UpstreamTimeout(
            f"{upstream}'s gateway timed out (HTTP 504); MAST is busy, try again later.",
            upstream=upstream,
            retry_after_s=_retry_after(response),
        )
    raise BadUpstreamResponse(f"{upstream} answered HTTP {status}: {message}", upstream=upstream)


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
    except ValueError as exc:
        raise BadUpstreamResponse(
            f"{upstream} sent malformed JSON ({exc.__class__.__name__} at byte {getattr(exc, 'pos', '?')}).",
            upstream=upstream,
            retry_after_s=DEFAULT_RETRY_AFTER_S,
        ) from exc
