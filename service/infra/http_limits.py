"""A bound on the size of each request's head (request line and headers), which uvicorn's httptools server lacks.

uvicorn bounds headers only with its h11 parser (``h11_max_incomplete_event_size``), which is markedly slower;
with httptools a client can send a header of any size and the parser keeps all of it in memory. So
`HeaderLimitedProtocol` is uvicorn's httptools protocol that counts the bytes of each request (pipelined ones
included) until its headers are complete, and past the limit answers ``431 Request Header Fields Too Large`` as a
problem document, with ``Connection: close``, without giving the parser another byte.

It relies on a few of uvicorn's internals (pinned in pyproject.toml); `http_protocol_options` checks them at start
and, should they have changed, falls back to h11 with the same limit rather than run unbounded.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.infra.metrics import HTTP_HEADS_REFUSED
from service.infra.problem_json import PROBLEM_MEDIA_TYPE, Problem

log = logging.getLogger(__name__)

# After the 431, read and drop what the client still sends for this long before closing: closing a socket with
# unread data makes the kernel reset the connection, and the client would see a reset instead of the 431.
LINGER_S = 2.0

# What `HeaderLimitedProtocol` needs from uvicorn's class; checked once, at start.
_HOOKS = ("data_received", "on_message_begin", "on_headers_complete", "on_message_complete", "shutdown")


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 to a request whose head exceeds `max_header_bytes`."""

    max_header_bytes: ClassVar[int] = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The parser is fed pieces of at most this size: a request that starts inside a piece, right after the
        # previous one ended, is charged the whole piece (where it starts is not known), so pipelined requests
        # are bounded too, at the price of being refused up to one piece early.
        self._piece_max = max(self.max_header_bytes // 8, 256)
        self._piece_len = 0
        self._ended_in_piece = False  # a request ended inside the piece being parsed
        self._in_head = True  # until the current request's headers are complete
        self._head_bytes = 0  # bytes of the current request's head received so far
        self._refused = False

    def data_received(self, data: bytes) -> None:
        """Feed the parser piece by piece, never more than the current request's head may still take."""
        start = 0
        while start < len(data):
            if self._refused or self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # lingering after a 431 (or uvicorn answered 400, or the connection was upgraded)
            size = self._piece_max
            if self._in_head:
                size = min(size, self.max_header_bytes - self._head_bytes)
                self._head_bytes += min(size, len(data) - start)
            piece = data if start == 0 and size >= len(data) else data[start : start + size]
            start += size
            self._piece_len, self._ended_in_piece = len(piece), False
            super().data_received(piece)
            if self._in_head and self._head_bytes >= self.max_header_bytes and not self.transport.is_closing():
                self._refuse()
                return

    def on_message_begin(self) -> None:
        """Charge a request that starts where the previous one ended, inside a piece, that whole piece."""
        super().on_message_begin()
        if self._ended_in_piece:
            self._head_bytes = self._piece_len

    def on_headers_complete(self) -> None:
        """Leave the head: what follows is body, not counted."""
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """Count the next request (pipelined, or later on this keep-alive connection) from zero."""
        super().on_message_complete()
        self._in_head, self._head_bytes, self._ended_in_piece = True, 0, True

    def _refuse(self) -> None:
        self._refused = True
        HTTP_HEADS_REFUSED.inc()
        log.warning("Refused a request whose line and headers exceed %d bytes (431).", self.max_header_bytes)
        if self.cycle is not None and not self.cycle.response_complete:
            # Earlier pipelined requests are still being answered; a 431 now would land inside their responses.
            # Let them finish and close the connection after the last one instead.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        self.transport.write(self._head_too_large_response())
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client sees the answer end; our reading goes on until it hangs up
        self.loop.call_later(LINGER_S, self.transport.close)

    def _head_too_large_response(self) -> bytes:
        url = getattr(self, "url", b"")  # uvicorn's on_message_begin sets it: unset if the first read is too large
        path = url.partition(b"?")[0][:200].decode("latin-1") or "/"
        body = orjson.dumps(
            Problem(
                status=431,
                title="Request header fields too large",
                slug="header-too-large",
                detail=f"The request line and headers together exceed {self.max_header_bytes} bytes.",
            ).body(path)
        )
        lines = [STATUS_LINE[431]]
        lines += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        lines += [
            b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"cache-control: no-store\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        return b"".join(lines)


def http_protocol_options(max_header_bytes: int) -> dict[str, Any]:
    """Return the `uvicorn.run` keywords that bound each request's head to ``max_header_bytes``."""
    if all(callable(getattr(HttpToolsProtocol, hook, None)) for hook in _HOOKS) and 431 in STATUS_LINE:
        protocol = type("HeaderLimitedProtocol", (HeaderLimitedProtocol,), {"max_header_bytes": max_header_bytes})
        return {"http": protocol}
    log.warning("uvicorn's httptools protocol has changed; using h11 to keep request headers bounded.")
    return {"http": "h11", "h11_max_incomplete_event_size": max_header_bytes}
