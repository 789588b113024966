"""The bound on a request's head (request line + headers) that `python -m service` sets on uvicorn's httptools server.

Only a real server process has an HTTP parser, so these tests start `python -m service` (the production entry point,
not `uvicorn service.main:app`) against the emulator and talk to it over sockets.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from service.infra.http_limits import HeaderLimitedProtocol, http_protocol_options
from tests.fake_mast import FakeMast
from tests.service_process import free_port, module_command, running, service_env

pytestmark = pytest.mark.process

LIMIT = 64 * 1024  # the default of TESS_SERVICE_MAX_HEADER_BYTES


@pytest.fixture(scope="module")
def service(mast: FakeMast, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of `python -m service`, with its default header limit, started once for this module."""
    port = free_port()
    env = service_env(
        mast,
        tmp_path_factory.mktemp("header-limits") / "cache",
        TESS_SERVICE_PORT=str(port),
        TESS_SERVICE_LOG_LEVEL="error",
    )
    env.pop("TESS_SERVICE_MAX_HEADER_BYTES", None)
    base = f"http://127.0.0.1:{port}"
    with running(module_command(), env, base):
        yield base


def _raw_exchange(base_url: str, request: bytes) -> bytes:
    """Send raw bytes and return everything the service answers until it closes the connection."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _assert_431(response: httpx.Response) -> None:
    assert response.status_code == 431, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    assert response.headers["cache-control"] == "no-store"
    problem = response.json()
    assert problem["status"] == 431
    assert problem["type"] == "urn:tess-service:problem:header-too-large"
    assert problem["retryable"] is False


def test_one_header_of_100_kib_is_refused_431_and_the_server_keeps_answering(service):
    response = httpx.get(f"{service}/health", headers={"X-Padding": "x" * 100 * 1024}, timeout=30)
    _assert_431(response)
    assert response.json()["instance"] == "/health"
    assert httpx.get(f"{service}/health", timeout=30).status_code == 200


def test_many_small_headers_summing_past_the_limit_are_refused(service):
    headers = [(f"X-Small-{i}", "y" * 30) for i in range(2000)]  # 2,000 × ~45 bytes, each header harmless alone
    _assert_431(httpx.get(f"{service}/health", headers=headers, timeout=30))


def test_a_request_with_8_kib_of_headers_is_served(service):
    headers = [(f"X-Ordinary-{i}", "z" * 200) for i in range(40)]
    with httpx.Client(base_url=service, timeout=30) as client:
        # Twice on one connection: the count starts afresh for each request of a keep-alive connection.
        assert [client.get("/health", headers=headers).status_code for _ in range(2)] == [200, 200]


def test_a_head_just_under_the_limit_is_served_and_just_over_is_refused(service):
    line = b"GET /health HTTP/1.1\r\nHost: service\r\nConnection: close\r\nX-Pad: "
    fits = line + b"p" * (LIMIT - len(line) - 4) + b"\r\n\r\n"
    assert len(fits) == LIMIT
    assert _raw_exchange(service, fits).startswith(b"HTTP/1.1 200")
    too_big = line + b"p" * (LIMIT - len(line) - 3) + b"\r\n\r\n"
    assert _raw_exchange(service, too_big).startswith(b"HTTP/1.1 431")


def test_pipelined_requests_are_each_counted_on_their_own(service):
    # 600 small requests in one write, 75 KiB together: none is too large, all are answered.
    one = b"GET /health HTTP/1.1\r\nHost: service\r\nX-Pad: " + b"q" * 80 + b"\r\n\r\n"
    many = one * 599 + one.replace(b"Host: service", b"Host: service\r\nConnection: close")
    assert len(many) > LIMIT
    assert _raw_exchange(service, many).count(b"HTTP/1.1 200 OK") == 600


def test_an_oversized_pipelined_request_is_not_read_and_ends_the_connection(service):
    # The first request is answered; the second, too large, is either answered 431 or (if the first was still
    # being answered) the connection closes after the first. Either way its head is never read whole.
    ok = b"GET /health HTTP/1.1\r\nHost: service\r\n\r\n"
    huge = b"GET /health HTTP/1.1\r\nHost: service\r\nX-Padding: " + b"x" * 100 * 1024 + b"\r\n\r\n"
    answer = _raw_exchange(service, ok + huge)
    statuses = [part[:3] for part in answer.split(b"HTTP/1.1 ")[1:]]
    assert statuses in ([b"200"], [b"200", b"431"]), answer[:500]
    assert httpx.get(f"{service}/health", timeout=30).status_code == 200


def test_the_limit_is_taken_from_the_setting():
    options = http_protocol_options(8192)
    assert issubclass(options["http"], HeaderLimitedProtocol)
    assert options["http"].max_header_bytes == 8192
