"""No parameter can make the service fetch a URL of the caller's choosing.

Every parameter of every route in the OpenAPI document (path segments, query values, form fields) gets URL-ish,
path-traversal and CRLF values while the others keep values that would reach MAST. Then: the MAST emulator saw
only requests to MAST's own endpoints (no traversal, no control paths), a TCP listener standing in for "another
host" (and named in the hostile values) saw no connection, and nothing answered 5xx. The upstream clients build
URLs from parsed numbers and ids only (service/upstream/*.py); this test keeps it that way for new parameters too.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from service.main import create_app
from tests.fake_mast import FakeMast

# What the service may ask MAST for: ExoMAST's three DV endpoints by numeric TIC, TESScut's two, the TIC catalog.
ALLOWED_UPSTREAM_PATHS = [
    re.compile(r"/api/v0\.1/dvdata/tess/[0-9]{1,11}/(tces|info|table)/"),
    re.compile(r"/tesscut/api/v0\.1/(sector|astrocut)"),
    re.compile(r"/api/v0/invoke"),
    re.compile(r"/webservices/skybot/api/conesearch\.php"),  # the diagnosis asks SkyBoT (the emulator's)
]
# A value for each parameter that gets a request past validation, so a hostile value elsewhere meets real work.
BASELINE: dict[str, Any] = {
    "tic_id": "214568914",
    "star_id": "214568914",
    "tce_id": "s0001-s0001:TCE_1",
    "job_id": "0" * 32,
    "tce": "TCE_1",
    "ra": 340.8004,
    "dec": -36.3439,
    "start": 1334.0,
    "end": 1334.2,
    "time": 1334.45,
    "size": 5,
    "x": 5,
    "y": 5,
    "wait": 0,
    "obj_id": "Eleonora",
}
# `sector` is a number on the clean routes and TESScut's, a range string on ExoMAST's.
SECTOR_BASELINE = {"integer": 1, "string": "s0001-s0001"}


@pytest.fixture
def listener() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback TCP port that records whatever connects to it: the 'other host' no request may reach."""
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(1)
                try:
                    received.append(connection.recv(4096) or b"<connected>")
                except OSError:
                    received.append(b"<connected>")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join(5)
        server.close()


def hostile_values(other_host: str) -> list[str]:
    """URL-ish, traversal and header-injection values, several aimed at ``other_host``."""
    return [
        f"http://{other_host}/steal",
        f"//{other_host}/steal",
        f"@{other_host}",
        f"214568914@{other_host}",
        f"{other_host}",
        "https://evil.example/x",
        "file:///etc/passwd",
        "../../__fake__/reset",
        "..%2f..%2f__fake__%2freset",
        "%2e%2e/%2e%2e/api/v0/invoke",
        "..\\..\\__fake__\\reset",
        "214568914/../../../__fake__/reset",
        "214568914?x=http://evil.example",
        "214568914#frag",
        "1\r\nHost: evil.example",
        "TCE_1\r\n\r\nGET /__fake__/reset HTTP/1.1",
        "1%0d%0aX-Evil:%20yes",
    ]


def _operations() -> Iterator[tuple[str, str, list[tuple[str, str, str]]]]:
    """Yield (method, path template, [(location, name, JSON type)]) for every documented operation."""
    document = create_app().openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = []
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                kinds = [s["type"] for s in (schema, *schema.get("anyOf", [])) if s.get("type") not in (None, "null")]
                parameters.append((parameter["in"], parameter["name"], str(kinds[0] if kinds else "string")))
            form = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
            for name, schema in (form or {}).get("schema", {}).get("properties", {}).items():
                parameters.append(("form", name, str(schema.get("type", "string"))))
            yield method.upper(), path, parameters


def _baseline(name: str, kind: str) -> Any:
    return SECTOR_BASELINE[kind] if name == "sector" else BASELINE.get(name)


def _requests(other_host: str) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Yield (method, url path, query, form): the baseline of each operation, then one per parameter and value."""
    for method, template, parameters in _operations():
        cases: list[tuple[tuple[str, str] | None, Any]] = [(None, None)]
        cases += [((location, name), value) for location, name, _ in parameters for value in hostile_values(other_host)]
        for target, value in cases:
            path, query, form = template, {}, {}
            for location, name, kind in parameters:
                chosen = value if (location, name) == target else _baseline(name, kind)
                if location == "path":
                    path = path.replace(f"{{{name}}}", quote(str(chosen), safe=""))
                elif chosen is not None:
                    (form if location == "form" else query)[name] = chosen
            yield method, path, query, form


def test_no_parameter_reaches_another_host_or_another_upstream_path(
    fuzz_service: str, mast: FakeMast, listener: tuple[str, list[bytes]]
) -> None:
    other_host, received = listener
    failures = []
    sent = 0
    with httpx.Client(base_url=fuzz_service, timeout=60) as http:
        for method, path, query, form in _requests(other_host):
            response = http.request(method, path, params=query, data=form or None)
            sent += 1
            if response.status_code >= 500 and not (response.status_code == 501 and "/moving_target/" in path):
                failures.append(f"{response.status_code} {method} {response.request.url}: {response.text[:200]}")
    assert sent > 1000, "every operation's every parameter should have been tried"
    assert not failures, "\n".join(failures[:20])
    assert received == [], f"something connected to the other host: {received[:3]}"
    # The baselines went deep, so a hostile value next to them met the code that talks to MAST.
    for endpoint in ("exomast.tces", "exomast.info", "exomast.table", "tesscut.sector", "tesscut.astrocut"):
        assert mast.count(endpoint=endpoint) > 0, f"no request reached {endpoint}"
    paths = mast.counters()["paths"]
    foreign = [path for path in paths if not any(allowed.fullmatch(path) for allowed in ALLOWED_UPSTREAM_PATHS)]
    assert foreign == [], f"MAST was asked for paths outside its API: {foreign}"
