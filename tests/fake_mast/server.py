"""The fake MAST server: a real HTTP/1.1 server on loopback with counters, fault injection and a control API.

The standard library server is used on purpose: faults such as a connection dropped mid-body need full control of
the socket, which an ASGI server would hide.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from .catalogs import INVOKE_PATH, catalog_routes
from .exomast import API_PREFIX, ExoMastApi
from .routing import Request, Response, Route, RouteMatch, Router, detail_response, json_response, route
from .skybot import SKYBOT_PATH, skybot_routes
from .targets import DATA_DIR, DvArchive, default_archive
from .tesscut import TESSCUT_PREFIX, CutoutCache, TesscutApi

CONTROL_PREFIX = "/__fake__/"
FAULT_BODY_KINDS = ("truncate", "malformed", "nan", "drop", "empty", "html")
NGINX_504_PATH = DATA_DIR / "tesscut_astrocut_504_gateway_timeout.html"

# Same nginx template (and version) as the real 504 page in tests/data, with the 503 wording nginx uses for
# limit_req/limit_conn rejections.
NGINX_503_BODY = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    b'<body bgcolor="white">\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n'
    b"<hr><center>nginx/1.12.2</center>\r\n</body>\r\n</html>\r\n"
)
# What a front end serves with 200 while the application behind it is down for maintenance.
MAINTENANCE_PAGE_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>MAST is down for maintenance</title></head>\n"
    b"<body><h1>MAST is down for maintenance</h1><p>Please try again later.</p></body></html>\n"
)
# nginx's reason phrases differ from Python's for these two.
_REASON_PHRASES = {503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
# TESScut's documented limit: more than 10 simultaneous requests get a 503 from its nginx front end.
TESSCUT_MAX_IN_FLIGHT = 10
BODY_CHUNK_BYTES = 256 * 1024


# ---------------------------------------------------------------------------------------------------------------
# Faults and counters


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour for the requests whose path matches ``path_glob`` (fnmatch, no query)."""

    path_glob: str
    status: int | None = None
    delay_s: float = 0.0
    body: str | None = None
    content_type: str | None = None
    times: int | None = None  # applications left; None = until cleared
    throttle_bytes_per_s: float | None = None  # send the body no faster than this
    retry_after_s: int | None = None  # a Retry-After header on the answer

    def as_dict(self) -> dict[str, Any]:
        """The fault in the shape the control API accepts (``path`` for ``path_glob``)."""
        return {
            "path": self.path_glob,
            "status": self.status,
            "delay_s": self.delay_s,
            "body": self.body,
            "content_type": self.content_type,
            "times": self.times,
            "throttle_bytes_per_s": self.throttle_bytes_per_s,
            "retry_after_s": self.retry_after_s,
        }


def make_fault(
    path_glob: str,
    *,
    status: int | None = None,
    delay_s: float = 0.0,
    body: str | None = None,
    content_type: str | None = None,
    times: int | None = None,
    throttle_bytes_per_s: float | None = None,
    retry_after_s: int | None = None,
) -> Fault:
    """Validate the keywords of ``set_fault`` and build the fault (ValueError on nonsense)."""
    if not isinstance(path_glob, str) or not path_glob:
        raise ValueError("path_glob must be a non-empty string")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError(f"status must be an HTTP status code, not {status!r}")
    if isinstance(delay_s, bool) or not isinstance(delay_s, int | float) or delay_s < 0:
        raise ValueError(f"delay_s must be a non-negative number, not {delay_s!r}")
    if body is not None and body not in FAULT_BODY_KINDS:
        raise ValueError(f"body must be one of {', '.join(FAULT_BODY_KINDS)}, not {body!r}")
    if content_type is not None and (not isinstance(content_type, str) or "\n" in content_type):
        raise ValueError(f"content_type must be a header value, not {content_type!r}")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a positive integer or None, not {times!r}")
    if throttle_bytes_per_s is not None and (
        isinstance(throttle_bytes_per_s, bool)
        or not isinstance(throttle_bytes_per_s, int | float)
        or not 0 < throttle_bytes_per_s < float("inf")
    ):
        raise ValueError(f"throttle_bytes_per_s must be a positive number or None, not {throttle_bytes_per_s!r}")
    if retry_after_s is not None and (
        isinstance(retry_after_s, bool) or not isinstance(retry_after_s, int) or retry_after_s < 0
    ):
        raise ValueError(f"retry_after_s must be a non-negative integer or None, not {retry_after_s!r}")
    throttle = float(throttle_bytes_per_s) if throttle_bytes_per_s is not None else None
    return Fault(path_glob, status, float(delay_s), body, content_type, times, throttle, retry_after_s)


class FaultTable:
    """The active faults; the most recently added matching fault wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Activate a fault."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, raw_path: str) -> Fault | None:
        """The fault to apply to this request, consuming one of its ``times``."""
        with self._lock:
            for index in range(len(self._faults) - 1, -1, -1):
                fault = self._faults[index]
                if not fnmatch.fnmatchcase(raw_path, fault.path_glob):
                    continue
                applied = dataclasses.replace(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        del self._faults[index]
                return applied
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        """The active faults, oldest first."""
        with self._lock:
            return [fault.as_dict() for fault in self._faults]


class Counters:
    """Request counts per raw path and per endpoint name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: Counter[str] = Counter()
        self._endpoints: Counter[str] = Counter()

    def record(self, raw_path: str, endpoint: str) -> None:
        """Count one request."""
        with self._lock:
            self._paths[raw_path] += 1
            self._endpoints[endpoint] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{"paths": {...}, "endpoints": {...}}``, a copy."""
        with self._lock:
            return {"paths": dict(self._paths), "endpoints": dict(self._endpoints)}

    def count(self, endpoint: str | None = None, path: str | None = None) -> int:
        """Requests to one endpoint, or to one path, or (neither given) in total."""
        if endpoint is not None and path is not None:
            raise ValueError("give endpoint or path, not both")
        with self._lock:
            if endpoint is not None:
                return self._endpoints.get(endpoint, 0)
            if path is not None:
                return self._paths.get(path, 0)
            return sum(self._endpoints.values())

    def clear(self) -> None:
        """Reset every count to zero."""
        with self._lock:
            self._paths.clear()
            self._endpoints.clear()


class InFlightGauge:
    """Requests in flight for a group of endpoints, with a high-water mark and an nginx-style limit.

    Every request counts from arrival to the last byte of its response, rejected ones included while they are
    answered, so the high-water mark passes the limit exactly when a client had more requests in flight than that.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._current = 0
        self._high_water = 0
        self._starts: list[float] = []  # monotonic arrival times since the last reset

    def enter(self) -> bool:
        """Count a request in; False when it is over the limit (and must be rejected)."""
        with self._lock:
            self._current += 1
            self._high_water = max(self._high_water, self._current)
            self._starts.append(time.monotonic())
            return self._current <= self.limit

    def leave(self) -> None:
        """Count a request out."""
        with self._lock:
            self._current -= 1

    @property
    def current(self) -> int:
        """Requests in flight now."""
        with self._lock:
            return self._current

    @property
    def high_water(self) -> int:
        """The most requests in flight at once since the last reset."""
        with self._lock:
            return self._high_water

    def reset(self) -> None:
        """Restart the high-water mark from the requests in flight now."""
        with self._lock:
            self._high_water = self._current
            self._starts.clear()

    def most_starts_in_a_second(self) -> int:
        """The most requests that arrived within any one second since the last reset (a sliding window)."""
        with self._lock:
            starts = sorted(self._starts)
        most, first = 0, 0
        for last, at in enumerate(starts):
            while at - starts[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most

    def snapshot(self) -> dict[str, int]:
        """``{"current", "max", "limit"}``."""
        with self._lock:
            return {"current": self._current, "max": self._high_water, "limit": self.limit}


def status_fault_response(status: int) -> Response:
    """The body MAST's front end sends with an error status."""
    if status == 504:
        return Response(504, NGINX_504_PATH.read_bytes(), "text/html")
    if status == 503:
        return Response(503, NGINX_503_BODY, "text/html")
    if status == 500:
        return Response(500, b"Internal Server Error", "text/plain")
    if status < 200 or status in (204, 304):
        return Response(status, b"", "")  # these statuses must not carry a body
    return detail_response(status, _reason_phrase(status))


def apply_body_fault(response: Response, fault: Fault) -> Response:
    """Corrupt a response body as the fault asks (``truncate`` and ``drop`` act on the socket instead)."""
    if response.body_file is not None and fault.body in ("malformed", "empty"):
        # A streamed body becomes an in-memory one: its first half (a zip without its central directory), or nothing.
        keep = response.content_length // 2 if fault.body == "malformed" else 0
        head = response.body_file.read(keep)
        response.close()
        response = dataclasses.replace(response, body=head, body_file=None)
        fault = dataclasses.replace(fault, body=None)
    body = response.body
    if fault.body == "malformed":
        # Half of a JSON document never parses: at least the closing bracket is gone.
        body = body[: len(body) // 2] if len(body) > 1 else b'{"'
    elif fault.body == "nan":
        # What Python's json.dumps writes for float('nan'); orjson wrote the missing values as null.
        body = body.replace(b":null", b":NaN")
    elif fault.body == "empty":
        body = b""
    content_type = fault.content_type if fault.content_type is not None else response.content_type
    return dataclasses.replace(response, body=body, content_type=content_type)


def _reason_phrase(status: int) -> str:
    if status in _REASON_PHRASES:
        return _REASON_PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# ---------------------------------------------------------------------------------------------------------------
# HTTP server


class MastHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server holding the routing tables and the shared fault/counter state."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        router: Router,
        control_router: Router,
        faults: FaultTable,
        counters: Counters,
        stopping: threading.Event,
        gauges: tuple[tuple[str, InFlightGauge], ...] = (),
        log_requests: bool = False,
    ) -> None:
        self.router = router
        self.control_router = control_router
        self.faults = faults
        self.counters = counters
        self.gauges = gauges  # (endpoint-name prefix, gauge)
        self.stopping = stopping
        self.log_requests = log_requests
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, MastRequestHandler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (socket.getfqdn), which can stall for seconds offline."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def gauge_for(self, endpoint: str) -> InFlightGauge | None:
        """The in-flight gauge that covers an endpoint name, if any."""
        return next((gauge for prefix, gauge in self.gauges if endpoint.startswith(prefix)), None)

    def track(self, connection: socket.socket) -> None:
        """Remember an open client connection."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a closed client connection."""
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Hang up every open connection, so pooled keep-alive clients cannot reach a stopped emulator."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients hanging up (routine with faults and timeouts); report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class MastRequestHandler(BaseHTTPRequestHandler):
    """Parses a request, counts it, applies faults and writes the response with an exact Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-mast/0.1"
    # Like nginx's keepalive_timeout: idle keep-alive connections (and their threads) do not live forever.
    timeout = 75.0
    server: MastHTTPServer

    def setup(self) -> None:
        """Disable Nagle so small responses are not held back by delayed ACKs, and track the connection."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        """Flush and forget the connection."""
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def version_string(self) -> str:
        """The Server header, without the Python version the base class appends."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Log only when asked; test output stays clean otherwise."""
        if self.server.log_requests:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        """Dispatch a GET."""
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        raw_path = split.path or "/"
        body = self._read_body()
        if body is None:
            return
        request = Request(
            method=self.command,
            raw_path=raw_path,
            path=unquote(raw_path),
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        if raw_path.startswith(CONTROL_PREFIX):
            # The control API is never counted or faulted, or a "*" fault would lock the tests out.
            self._send(self._call(self.server.control_router.resolve(self.command, request.path), request))
            return

        match = self.server.router.resolve(self.command, request.path)
        self.server.counters.record(raw_path, match.name)
        gauge = self.server.gauge_for(match.name)
        if gauge is None:
            self._serve(match, request)
            return
        admitted = gauge.enter()
        try:
            if admitted:
                self._serve(match, request)
            else:
                # nginx rejects before the backend sees the request: no fault, no handler.
                self._send(status_fault_response(503))
        finally:
            gauge.leave()

    def _serve(self, match: RouteMatch, request: Request) -> None:
        fault = self.server.faults.take(request.raw_path)
        if fault is None:
            self._send(self._call(match, request))
            return

        if fault.delay_s > 0:
            # An Event rather than time.sleep, so stopping the emulator does not wait out long delays.
            self.server.stopping.wait(fault.delay_s)
        if fault.body == "drop":
            self.close_connection = True
            return
        if fault.status is not None:
            response = status_fault_response(fault.status)
        elif fault.body == "empty":
            response = Response(200, b"")
        elif fault.body == "html":
            response = Response(200, MAINTENANCE_PAGE_BODY, "text/html")
        else:
            response = self._call(match, request)
        if fault.retry_after_s is not None:
            response = dataclasses.replace(
                response, headers=(*response.headers, ("Retry-After", str(fault.retry_after_s)))
            )
        self._send(
            apply_body_fault(response, fault),
            truncate=fault.body == "truncate",
            throttle_bytes_per_s=fault.throttle_bytes_per_s,
        )

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering an unreadable request."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            self._send(detail_response(400, "Invalid Content-Length"))
            return None
        return self.rfile.read(length)

    def _call(self, match: RouteMatch, request: Request) -> Response:
        if match.route is None:
            if match.allowed_methods:
                response = detail_response(405, "Method Not Allowed")
                return dataclasses.replace(response, headers=(("Allow", ", ".join(match.allowed_methods)),))
            return detail_response(404, "Not Found")
        try:
            return match.route.handler(dataclasses.replace(request, params=match.params))
        except Exception:
            # A bug in the emulator should look like an upstream 500 to the client and be loud in the test log.
            traceback.print_exc(file=sys.stderr)
            return Response(500, b"Internal Server Error", "text/plain")

    def _send(self, response: Response, *, truncate: bool = False, throttle_bytes_per_s: float | None = None) -> None:
        try:
            length = response.content_length
            lines = [
                f"HTTP/1.1 {response.status} {_reason_phrase(response.status)}",
                f"Server: {self.version_string()}",
                f"Date: {self.date_time_string()}",
            ]
            if response.content_type:
                lines.append(f"Content-Type: {response.content_type}")
            lines.append(f"Content-Length: {length}")
            lines.extend(f"{name}: {value}" for name, value in response.headers)
            if self.close_connection:
                lines.append("Connection: close")
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            to_send = 0 if self.command == "HEAD" else length
            if truncate:
                # Headers promised the full length; sending half and hanging up is a connection dropped mid-body.
                to_send //= 2
                self.close_connection = True
            sent = self._write_body(response, to_send, throttle_bytes_per_s)
            self.wfile.flush()
            self.log_request(response.status, sent)
        finally:
            response.close()

    def _write_body(self, response: Response, limit: int, throttle_bytes_per_s: float | None) -> int:
        """Write up to ``limit`` body bytes, in chunks and at most at the throttled rate; returns the bytes sent."""
        chunk_size = BODY_CHUNK_BYTES
        if throttle_bytes_per_s is not None:
            # About 20 writes per second, so a client sees steady progress.
            chunk_size = max(1, min(chunk_size, int(throttle_bytes_per_s / 20)))
        body = memoryview(response.body)
        started = time.monotonic()
        sent = 0
        while sent < limit:
            size = min(chunk_size, limit - sent)
            if response.body_file is not None:
                chunk: bytes | memoryview = response.body_file.read(size)
                if not chunk:
                    break
            else:
                chunk = body[sent : sent + size]
            if throttle_bytes_per_s is not None:
                ahead_s = started + sent / throttle_bytes_per_s - time.monotonic()
                if ahead_s > 0 and self.server.stopping.wait(ahead_s):
                    self.close_connection = True
                    break
            self.wfile.write(chunk)
            sent += len(chunk)
        return sent


# ---------------------------------------------------------------------------------------------------------------
# Control API and the public class


_FAULT_KEYS = {"path", "status", "delay_s", "body", "content_type", "times", "throttle_bytes_per_s", "retry_after_s"}


def _fault_from_json(body: bytes | None) -> Fault | Response:
    """Build the fault a control request's JSON body describes, or the 400 that says what is wrong with it."""
    try:
        spec = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as error:
        return detail_response(400, f"Invalid JSON body: {error}")
    if not isinstance(spec, dict):
        return detail_response(400, "Expected a JSON object")
    unknown = set(spec) - _FAULT_KEYS
    if unknown:
        return detail_response(400, f"Unknown fault keys: {', '.join(sorted(unknown))}")
    path_glob = spec.pop("path", "*")
    try:
        return make_fault(path_glob, **spec)
    except (TypeError, ValueError) as error:
        return detail_response(400, str(error))


def control_routes(faults: FaultTable, counters: Counters, tesscut_gauge: InFlightGauge) -> list[Route]:
    """The ``/__fake__/`` routes that let another process drive a running emulator."""

    def add_fault(request: Request) -> Response:
        fault = _fault_from_json(request.body)
        if isinstance(fault, Response):
            return fault
        faults.add(fault)
        return json_response({"fault": fault.as_dict()}, 201)

    def list_faults(request: Request) -> Response:
        return json_response({"faults": faults.snapshot()})

    def clear_faults(request: Request) -> Response:
        faults.clear()
        return json_response({"faults": []})

    def get_counters(request: Request) -> Response:
        return json_response(counters.snapshot())

    def get_tesscut_in_flight(request: Request) -> Response:
        return json_response(tesscut_gauge.snapshot())

    def reset(request: Request) -> Response:
        faults.clear()
        counters.clear()
        tesscut_gauge.reset()
        return json_response({"reset": True})

    return [
        route("POST", r"/__fake__/faults/?", "control.faults", add_fault),
        route("GET", r"/__fake__/faults/?", "control.faults", list_faults),
        route("DELETE", r"/__fake__/faults/?", "control.faults", clear_faults),
        route("GET", r"/__fake__/counters/?", "control.counters", get_counters),
        route("GET", r"/__fake__/tesscut/in-flight/?", "control.tesscut", get_tesscut_in_flight),
        route("POST", r"/__fake__/reset/?", "control.reset", reset),
    ]


class FakeMast:
    """A MAST emulator on loopback: ExoMAST v0.1, TESScut v0.1 and the Portal's TIC, with faults and counters.

    Usage: ``with FakeMast() as mast: httpx.get(mast.exomast_url + "dvdata/tess/214568914/tces/")``.
    Generated TESScut zips live in a temporary directory owned by the instance and deleted by :meth:`stop`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_requests: bool = False,
        archive: DvArchive | None = None,
        tesscut_max_in_flight: int = TESSCUT_MAX_IN_FLIGHT,
        cutout_cache_entries: int = 64,
        cutout_cache_bytes: int = 2 << 30,
    ) -> None:
        self.host = host
        self.port = port  # 0 until started: the OS picks; kept afterwards so a restart reuses the same port
        self.log_requests = log_requests
        self._faults = FaultTable()
        self._counters = Counters()
        self._tesscut_gauge = InFlightGauge(tesscut_max_in_flight)
        self.exomast = ExoMastApi(archive if archive is not None else default_archive())
        self.tesscut = TesscutApi(CutoutCache(max_entries=cutout_cache_entries, max_bytes=cutout_cache_bytes))
        self.router = Router(self.exomast.routes())
        self.router.add(*self.tesscut.routes(), *catalog_routes(), *skybot_routes())
        self._control_router = Router(control_routes(self._faults, self._counters, self._tesscut_gauge))
        self._server: MastHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lifecycle_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> FakeMast:
        """Bind and serve in a background daemon thread; returns self (a no-op when already running)."""
        with self._lifecycle_lock:
            if self._server is not None:
                return self
            self._stopping = threading.Event()
            server = MastHTTPServer(
                (self.host, self.port),
                router=self.router,
                control_router=self._control_router,
                faults=self._faults,
                counters=self._counters,
                stopping=self._stopping,
                gauges=(("tesscut.", self._tesscut_gauge),),
                log_requests=self.log_requests,
            )
            self.port = server.server_port
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-mast-{self.port}",
                daemon=True,
            )
            self._server = server
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, hang up open connections, release the port and delete the cached cutouts (idempotent)."""
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self.tesscut.cache.clear()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    def __enter__(self) -> FakeMast:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("FakeMast is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def exomast_url(self) -> str:
        """ExoMAST base URL with the trailing slash, e.g. ``http://127.0.0.1:54321/api/v0.1/``."""
        return self.url + API_PREFIX

    @property
    def tesscut_url(self) -> str:
        """TESScut base URL with the trailing slash, e.g. ``http://127.0.0.1:54321/tesscut/api/v0.1/``."""
        return self.url + TESSCUT_PREFIX

    @property
    def invoke_url(self) -> str:
        """The Portal (Mashup) API URL, e.g. ``http://127.0.0.1:54321/api/v0/invoke``."""
        return self.url + INVOKE_PATH

    @property
    def skybot_url(self) -> str:
        """SkyBoT's cone-search URL, e.g. ``http://127.0.0.1:54321/webservices/skybot/api/conesearch.php``."""
        return self.url + SKYBOT_PATH

    # -- faults and counters --------------------------------------------------------------------------------

    def set_fault(
        self,
        path_glob: str,
        *,
        status: int | None = None,
        delay_s: float = 0.0,
        body: str | None = None,
        content_type: str | None = None,
        times: int | None = None,
        throttle_bytes_per_s: float | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        """Inject a fault into requests whose path (no query) matches the fnmatch pattern ``path_glob``.

        ``throttle_bytes_per_s`` sends the response body no faster than that rate (headers go out at once);
        ``retry_after_s`` adds a ``Retry-After`` header; ``body="html"`` answers 200 with a maintenance page.
        """
        self._faults.add(
            make_fault(
                path_glob,
                status=status,
                delay_s=delay_s,
                body=body,
                content_type=content_type,
                times=times,
                throttle_bytes_per_s=throttle_bytes_per_s,
                retry_after_s=retry_after_s,
            )
        )

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The active faults, oldest first."""
        return self._faults.snapshot()

    def counters(self) -> dict[str, dict[str, int]]:
        """``{"paths": {raw path: n}, "endpoints": {name: n}}`` for every non-control request so far."""
        return self._counters.snapshot()

    def count(self, endpoint: str | None = None, path: str | None = None) -> int:
        """Requests to an endpoint (e.g. ``exomast.table``) or a path; the total if neither is given."""
        return self._counters.count(endpoint=endpoint, path=path)

    def tesscut_in_flight(self) -> int:
        """TESScut requests being served right now (rejected ones included while they are answered)."""
        return self._tesscut_gauge.current

    def tesscut_starts_max_per_s(self) -> int:
        """The most TESScut requests that arrived within any one second since the last :meth:`reset`."""
        return self._tesscut_gauge.most_starts_in_a_second()

    def tesscut_in_flight_max(self) -> int:
        """The most simultaneous TESScut requests since the last :meth:`reset` (503-rejected ones included)."""
        return self._tesscut_gauge.high_water

    def cutout_cache_stats(self) -> dict[str, int]:
        """``{"entries", "bytes", "builds", "hits"}`` of the generated-zip cache."""
        return self.tesscut.cache.stats()

    def clear_cutout_cache(self) -> None:
        """Delete every generated zip, so the next request regenerates it."""
        self.tesscut.cache.clear()

    def reset(self) -> None:
        """Clear faults and counters and restart the TESScut in-flight high-water mark (the zip cache stays)."""
        self._faults.clear()
        self._counters.clear()
        self._tesscut_gauge.reset()
