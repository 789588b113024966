"""The edge tier: whole answers kept in memory by URL for as long as clients may keep them, served without routing.

An answer the service marks as cacheable (`Cache-Control: public, max-age=N`, a strong ETag) may be reused by any
HTTP cache for N seconds; this tier is such a cache inside the process. It keeps the status line, headers and body
once the answer has been served whole, and answers the next GET of the same URL (with the same ``Accept`` header)
for N seconds, with an ``Age`` header, before FastAPI resolves the route's parameters and dependencies, planning and
the cache lookups. For a 2 MiB movie that work, not the bytes, was most of the time per request
(`benchmarks/bench_large_answers.py`). A CDN in front of the service does the same for the same reason.

What is kept: 200 answers to GET (not HEAD) with a strong ETag and ``public, max-age`` > 0, not stale, no
``Set-Cookie``, at most ``entry_max_bytes`` each and ``max_bytes`` in all, least recently used out first. What is
not answered here: requests with a ``Range`` or any conditional header other than ``If-None-Match`` (the route
knows them all); ``If-None-Match`` matching the ETag is a 304 with the same validators. Answers served here say
``X-Cache: HIT`` and are counted by route like any other (the route is remembered with the answer).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.infra.head import is_head_request
from service.infra.http_cache import etag_matches
from service.infra.metrics import EDGE_TIER

_BYPASS = {b"range", b"if-match", b"if-modified-since", b"if-unmodified-since", b"if-range", b"authorization"}
# Kept answers' headers that a 304 repeats (RFC 9110 15.4.5).
_NOT_MODIFIED_HEADERS = {b"etag", b"cache-control", b"vary", b"expires", b"content-location", b"x-cache", b"age"}
_MAX_AGE = re.compile(rb"(?:^|,)\s*max-age=(\d+)")


@dataclass(frozen=True)
class _Kept:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str
    route: Any
    kept_at: float
    expires_at: float


class EdgeTier:
    """Pure ASGI middleware keeping and serving cacheable answers; see the module's doc."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, entry_max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self._clock = clock
        self._max_bytes = max_bytes
        self._entry_max_bytes = min(entry_max_bytes, max_bytes)
        self._kept: OrderedDict[tuple[bytes, bytes, bytes], _Kept] = OrderedDict()
        self._bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http" or scope["method"] != "GET" or self._max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if _BYPASS.intersection(headers):
            await self.app(scope, receive, send)
            return
        # The Accept header is part of the key: some answers vary by it, and one client sends the same one each time.
        path = scope.get("raw_path") or scope["path"].encode()
        key = (path, scope.get("query_string", b""), headers.get(b"accept", b""))
        kept = self._kept.get(key)
        if kept is not None and kept.expires_at <= self._clock():
            self._forget(key)
            kept = None
        if kept is not None:
            self._kept.move_to_end(key)
            EDGE_TIER.labels("hit").inc()
            scope["route"] = kept.route
            await _answer(kept, self._clock() - kept.kept_at, headers.get(b"if-none-match"), send)
            return
        if is_head_request(scope):  # a HEAD's route may make no body: nothing to keep
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self._keeping(scope, key, send))

    def _keeping(self, scope: Scope, key: tuple[bytes, bytes, bytes], send: Send) -> Send:
        """Return a `send` that passes the answer on and keeps it when it qualifies."""
        start: Message | None = None
        parts: list[bytes] = []
        size = 0

        async def send_keeping(message: Message) -> None:
            nonlocal start, size
            await send(message)
            if message["type"] == "http.response.start":
                start = message if _max_age_s(message) > 0 else None
            elif message["type"] == "http.response.body" and start is not None:
                body = message.get("body", b"")
                size += len(body)
                if size > self._entry_max_bytes:
                    start = None
                    parts.clear()
                    return
                parts.append(body)
                if not message.get("more_body", False):
                    self._keep(key, start, b"".join(parts), scope.get("route"))

        return send_keeping

    def _keep(self, key: tuple[bytes, bytes, bytes], start: Message, body: bytes, route: Any) -> None:
        headers = [(name.lower(), value) for name, value in start.get("headers", ())]
        found = dict(headers)
        headers = [(name, value) for name, value in headers if name not in (b"x-cache", b"x-request-id")]
        headers.append((b"x-cache", b"HIT"))
        self._forget(key)
        now = self._clock()
        self._kept[key] = _Kept(headers, body, found[b"etag"].decode("latin-1"), route, now, now + _max_age_s(start))
        self._bytes += len(body)
        EDGE_TIER.labels("kept").inc()
        while self._bytes > self._max_bytes:
            self._forget(next(iter(self._kept)))

    def _forget(self, key: tuple[bytes, bytes, bytes]) -> None:
        old = self._kept.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)


def _max_age_s(start: Message) -> int:
    """Return for how long any cache may reuse this answer, in seconds: 0 unless it is a keepable 200."""
    if start["status"] != 200:
        return 0
    found = {name.lower(): value for name, value in start.get("headers", ())}
    cache_control = found.get(b"cache-control", b"").lower()
    keepable = (
        b"public" in cache_control
        and not any(word in cache_control for word in (b"no-store", b"no-cache", b"private"))
        and found.get(b"etag", b"").startswith(b'"')  # strong
        and b"x-stale-reason" not in found
        and b"set-cookie" not in found
    )
    max_age = _MAX_AGE.search(cache_control) if keepable else None
    return int(max_age.group(1)) if max_age else 0


async def _answer(kept: _Kept, age_s: float, if_none_match: bytes | None, send: Send) -> None:
    if if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), kept.etag):
        headers = [(name, value) for name, value in kept.headers if name in _NOT_MODIFIED_HEADERS]
        headers.append((b"age", str(int(age_s)).encode()))
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    age = (b"age", str(int(age_s)).encode())
    await send({"type": "http.response.start", "status": 200, "headers": [*kept.headers, age]})
    await send({"type": "http.response.body", "body": kept.body})
