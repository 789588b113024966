"""Request/response types and the routing table of the fake MAST.

A route is (method, path regex, endpoint name, handler). Each upstream service (ExoMAST, TESScut, the Portal's TIC
catalogue, IMCCE's SkyBoT) contributes a list of routes from its own module; the server only knows this table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, BinaryIO

import orjson

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class Request:
    """What a handler sees of an HTTP request."""

    method: str
    raw_path: str  # as sent, without the query string (what counters and faults key on)
    path: str  # percent-decoded, what routes match
    query: dict[str, list[str]]  # blank values kept, so flags such as ``list_tce`` are visible
    headers: Message
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # named groups of the matching route

    def query_value(self, name: str) -> str | None:
        """The first value of a query parameter, or None if absent."""
        values = self.query.get(name)
        return values[0] if values else None

    def has_flag(self, name: str) -> bool:
        """Whether a query parameter is present at all, with or without a value."""
        return name in self.query


@dataclass(frozen=True)
class Response:
    """A complete response; the server adds Content-Length, Date and Server.

    A large body can be an open file instead (``body_file``, read from its current position to the end): the server
    streams it in chunks and closes it, whatever happens to the request.
    """

    status: int
    body: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    body_file: BinaryIO | None = field(default=None, compare=False, repr=False)

    @property
    def content_length(self) -> int:
        """Length of the body in bytes."""
        if self.body_file is None:
            return len(self.body)
        return os.fstat(self.body_file.fileno()).st_size - self.body_file.tell()

    def close(self) -> None:
        """Release the body file, if any."""
        if self.body_file is not None:
            self.body_file.close()


def json_response(payload: Any, status: int = 200) -> Response:
    """A compact JSON response with MAST's content type."""
    return Response(status, orjson.dumps(payload), JSON_CONTENT_TYPE)


def detail_response(status: int, detail: str) -> Response:
    """A FastAPI-style error body: ``{"detail": "..."}``."""
    return json_response({"detail": detail}, status)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """One entry of the routing table; ``name`` is the key of the endpoint counters."""

    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler


def route(method: str, path_regex: str, name: str, handler: Handler) -> Route:
    """Build a route; the regex must match the whole decoded path."""
    return Route(method.upper(), re.compile(path_regex), name, handler)


@dataclass(frozen=True)
class RouteMatch:
    """The outcome of a lookup: a route to call, or a name plus the methods the path does allow."""

    name: str
    route: Route | None
    params: dict[str, str]
    allowed_methods: tuple[str, ...] = ()


class Router:
    """An ordered routing table: the first route whose regex and method match wins."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._routes: list[Route] = list(routes)

    def add(self, *routes: Route) -> None:
        """Append routes (later modules extend the table this way)."""
        self._routes.extend(routes)

    def resolve(self, method: str, path: str) -> RouteMatch:
        """Find the route for a request; HEAD is served by GET routes."""
        wanted = "GET" if method == "HEAD" else method
        path_matches: list[Route] = []
        for candidate in self._routes:
            found = candidate.pattern.fullmatch(path)
            if found is None:
                continue
            if candidate.method == wanted:
                return RouteMatch(candidate.name, candidate, found.groupdict())
            path_matches.append(candidate)
        if path_matches:
            allowed = tuple(sorted({r.method for r in path_matches}))
            return RouteMatch(path_matches[0].name, None, {}, allowed)
        return RouteMatch("unknown", None, {})
