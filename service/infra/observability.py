"""Per-request observability from one pure ASGI layer: a request id, the HTTP metrics and one access-log line.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: that one runs the app in a separate task behind memory
streams, which costs tens of microseconds per request and gets in the way of streamed bodies. Here the only work
per request is a header scan, a ContextVar, a wrapped ``send`` and two metric updates (a few microseconds; see
the report in ``benchmarks/bench_observability.py``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.infra.head import is_head_request
from service.infra.metrics import HTTP_LATENCY, HTTP_REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED_ROUTE = "<unmatched>"
ACCESS_LOGGER = "service.access"

_HEADER_NAME = REQUEST_ID_HEADER.lower().encode("latin-1")
# An incoming id is kept only when it cannot hurt a log line, a header or a JSON document; else we make our own.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")
# Metric labels come from fixed sets only: a client inventing methods must not invent time series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_request_id: ContextVar[str | None] = ContextVar("tess_request_id", default=None)


def current_request_id() -> str | None:
    """Return the id of the request being handled (also inside its worker threads and jobs), or None."""
    return _request_id.get()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """Return the caller's ``X-Request-ID`` when it is sane, else a fresh random id (32 hex digits)."""
    for name, value in headers:
        if name == _HEADER_NAME:
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return os.urandom(16).hex()


def route_template(scope: Scope) -> str:
    """Return the matched route's path template (``/tic/{tic_id}/tces``), never the raw path."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE


class RequestObservabilityMiddleware:
    """Give every HTTP request an id (echoed in ``X-Request-ID``), count and time it by route, and log it once.

    Install it inside `HeadAsGetMiddleware`, so that the router's ``scope["route"]`` is visible here for HEAD too.
    Latency runs to the last body byte. An exception that escapes the app is counted as a 500 and the id is left
    set, so that the outermost error handler's problem document (and its ``X-Request-ID``) still carry it.

    An answer aborted after its status line went out (an exception mid-body: the client got a 200's headers and a
    cut-off body) is *counted* as a 500, since what the client got is a server failure that error rates must show,
    and *logged* (at WARNING) with the status that was sent, ``aborted: true`` and the bytes that did go out, so
    the line still matches what the client saw.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self._access_log = access_log
        self._log = logging.getLogger(ACCESS_LOGGER)
        # labels() takes a lock and hashes its arguments; the label sets are small and fixed, so keep the children.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        token = _request_id.set(request_id)
        id_header = (_HEADER_NAME, request_id.encode("ascii"))
        status = 0
        sent_bytes = 0
        finished = 0.0

        async def send_observed(message: Message) -> None:
            nonlocal status, sent_bytes, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    finished = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except BaseException:
            # Raised after the status line went out and before the last byte: the answer was cut off.
            aborted = status != 0 and not finished
            self._observe(scope, status or 500, started, time.perf_counter(), sent_bytes, aborted=aborted)
            raise
        self._observe(scope, status or 500, started, finished or time.perf_counter(), sent_bytes)
        _request_id.reset(token)

    def _observe(
        self, scope: Scope, status: int, started: float, finished: float, sent_bytes: int, *, aborted: bool = False
    ) -> None:
        route = route_template(scope)
        method = "HEAD" if is_head_request(scope) else scope["method"]
        if method not in _METHODS:
            method = "OTHER"
        duration_s = finished - started
        counted = 500 if aborted else status

        counter = self._counters.get((route, method, counted))
        if counter is None:
            counter = self._counters[(route, method, counted)] = HTTP_REQUESTS.labels(route, method, str(counted))
        counter.inc()
        histogram = self._histograms.get((route, method))
        if histogram is None:
            histogram = self._histograms[(route, method)] = HTTP_LATENCY.labels(route, method)
        histogram.observe(duration_s)

        level = logging.WARNING if aborted else logging.INFO
        if self._access_log and self._log.isEnabledFor(level):
            query = scope.get("query_string", b"").decode("latin-1")
            path = scope["path"]
            self._log.log(
                level,
                "%s %s%s -> %d%s (%.2f ms)",
                method,
                path,
                f"?{query}" if query else "",
                status,
                f", aborted after {sent_bytes} bytes" if aborted else "",
                duration_s * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "path": path,
                    "query": query,
                    "status": status,
                    "duration_ms": round(duration_s * 1000, 3),
                    # HEAD answers carry no body: the bytes counted here were dropped by HeadAsGetMiddleware.
                    "bytes": 0 if method == "HEAD" else sent_bytes,
                    "aborted": aborted,
                },
            )
