"""Request ids, /metrics and the access log, seen from outside: through HTTP, and from `python -m service`'s stderr."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import StreamingResponse

from service.infra.logs import RequestIdFilter
from service.infra.metrics import CACHE_VOLUME
from service.main import create_app
from tests.conftest import WEIRD_TCE, WEIRD_TIC
from tests.service_process import module_command, service_env, spawn

pytestmark = pytest.mark.anyio

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
TCES = f"/tic/{WEIRD_TIC}/tces"
TCES_GLOB = "/api/v0.1/dvdata/tess/*/tces/"


async def test_a_request_id_is_made_for_each_request_and_echoed(client):
    first = await client.get("/health")
    second = await client.get("/health")
    assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
    assert GENERATED_ID.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("given", ["trace-42", "0f9c2a1e-5b7d-4c3e-9a8b-112233445566", "a.b:c_d/E+f=", "x" * 128])
async def test_a_sane_incoming_request_id_is_kept(client, given):
    answer = await client.get("/health", headers={"X-Request-ID": given})
    assert answer.headers["x-request-id"] == given


@pytest.mark.parametrize("given", ["", "has space", "<script>", 'quote"d', "x" * 129, "line\tbreak", "caf\u00e9"])
async def test_an_insane_incoming_request_id_is_replaced(client, given):
    answer = await client.get("/health", headers=[(b"X-Request-ID", given.encode("latin-1"))])
    assert GENERATED_ID.fullmatch(answer.headers["x-request-id"])


async def test_unmatched_route_problem_carries_the_request_id(client):
    answer = await client.get("/no/such/route", headers={"X-Request-ID": "lost-1"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == "lost-1"
    assert answer.json()["request_id"] == "lost-1"


async def test_validation_problem_carries_the_generated_request_id(client):
    answer = await client.get("/tic/not-a-number/tces")
    assert answer.status_code == 422
    assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(answer.json()["request_id"])


async def test_upstream_failure_problem_carries_the_request_id(client, mast):
    mast.set_fault(TCES_GLOB, status=500)
    answer = await client.get(TCES, headers={"X-Request-ID": "upstream-500"})
    assert answer.status_code == 502
    assert answer.json()["upstream"] == "ExoMAST"
    assert answer.json()["request_id"] == "upstream-500"
    assert answer.headers["x-request-id"] == "upstream-500"


async def test_304_head_and_streamed_answers_carry_the_request_id(client):
    lightcurve = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve"
    assert (await client.get(lightcurve)).status_code == 200
    # The warm whole light curve (4 MB) is streamed from a cache file.
    async with client.stream("GET", lightcurve, headers={"X-Request-ID": "streamed"}) as streamed:
        assert streamed.headers["x-cache"] == "HIT"
        assert "content-length" in streamed.headers
        assert streamed.headers["x-request-id"] == "streamed"
        assert len(await streamed.aread()) > 1_000_000
    not_modified = await client.get(
        lightcurve, headers={"If-None-Match": streamed.headers["etag"], "X-Request-ID": "c"}
    )
    assert not_modified.status_code == 304
    assert not_modified.headers["x-request-id"] == "c"
    head = await client.head(lightcurve, headers={"X-Request-ID": "h"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["x-request-id"] == "h"


async def test_an_unexpected_error_is_a_500_problem_with_the_request_id(make_settings):
    app = create_app(make_settings())

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/broken", broken)
    before = _sample("tess_http_requests_total", route="/test-only/broken", method="GET", status="500")
    async with LifespanManager(app) as manager:
        # Starlette re-raises after answering, for the server to log; the client still gets the answer.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
            answer = await client.get("/test-only/broken", headers={"X-Request-ID": "bug-1"})
            scraped = await client.get("/metrics")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == "bug-1"
    assert answer.json()["request_id"] == "bug-1"
    after = _sample("tess_http_requests_total", scraped.text, route="/test-only/broken", method="GET", status="500")
    assert after == before + 1


async def test_an_answer_aborted_mid_body_is_counted_as_a_500_and_logged_as_aborted(make_settings, caplog):
    app = create_app(make_settings())

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise RuntimeError("the body broke off")

    async def broken_midway() -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    route = "/test-only/broken-midway"
    app.add_api_route(route, broken_midway)
    ok_before = _sample("tess_http_requests_total", route=route, method="GET", status="200")
    failed_before = _sample("tess_http_requests_total", route=route, method="GET", status="500")
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="service.access"):
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
                answer = await client.get(route, headers={"X-Request-ID": "cut-1"})
                scraped = (await client.get("/metrics")).text
    assert answer.status_code == 200, "the status line had gone out before the body broke off"
    assert _sample("tess_http_requests_total", scraped, route=route, method="GET", status="500") == failed_before + 1
    assert _sample("tess_http_requests_total", scraped, route=route, method="GET", status="200") == ok_before
    access = [r for r in caplog.records if r.name == "service.access" and getattr(r, "request_id", None) == "cut-1"]
    assert len(access) == 1
    assert (access[0].levelno, access[0].status, access[0].aborted, access[0].bytes) == (
        logging.WARNING,
        200,
        True,
        1000,
    )
    assert "aborted" in access[0].getMessage()


async def test_metrics_count_requests_by_route_template_method_and_status(client, mast):
    route = "/tic/{tic_id}/tces"
    scraped = (await client.get("/metrics")).text
    ok_before = _sample("tess_http_requests_total", scraped, route=route, method="GET", status="200")
    head_before = _sample("tess_http_requests_total", scraped, route=route, method="HEAD", status="200")
    bad_before = _sample("tess_http_requests_total", scraped, route=route, method="GET", status="422")
    unmatched_before = _sample("tess_http_requests_total", scraped, route="<unmatched>", method="GET", status="404")
    timed_before = _sample("tess_http_request_duration_seconds_count", scraped, route=route, method="GET")

    assert (await client.get(TCES)).status_code == 200
    assert (await client.get(f"/tic/00{WEIRD_TIC}/tces")).status_code == 200
    assert (await client.head(TCES)).status_code == 200
    assert (await client.get("/tic/x/tces")).status_code == 422
    assert (await client.get(f"/nowhere/{WEIRD_TIC}")).status_code == 404

    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["x-request-id"]
    scraped = answer.text
    assert _sample("tess_http_requests_total", scraped, route=route, method="GET", status="200") == ok_before + 2
    assert _sample("tess_http_requests_total", scraped, route=route, method="HEAD", status="200") == head_before + 1
    assert _sample("tess_http_requests_total", scraped, route=route, method="GET", status="422") == bad_before + 1
    unmatched = _sample("tess_http_requests_total", scraped, route="<unmatched>", method="GET", status="404")
    assert unmatched == unmatched_before + 1
    assert _sample("tess_http_request_duration_seconds_count", scraped, route=route, method="GET") == timed_before + 3
    # Labels are templates: no raw path (with its TIC id) ever becomes a time series.
    routes = {
        sample.labels.get("route") for family in text_string_to_metric_families(scraped) for sample in family.samples
    }
    assert not any(str(WEIRD_TIC) in (label or "") for label in routes)


async def test_metrics_report_the_cache_volume_measured_at_scrape_time(client):
    CACHE_VOLUME.set(0)
    lightcurve = await client.get(f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve")
    assert lightcurve.status_code == 200
    volume = _sample("tess_cache_volume_bytes", (await client.get("/metrics")).text)
    assert volume >= len(lightcurve.content), "the cached answer alone is this large"


async def test_metrics_route_is_documented_with_a_text_example(client):
    operation = (await client.get("/openapi.json")).json()["paths"]["/metrics"]["get"]
    assert operation["description"]
    content = operation["responses"]["200"]["content"]["text/plain"]
    assert list(text_string_to_metric_families(content["example"]))


async def test_every_log_record_of_a_request_carries_its_id(client, mast, caplog):
    caplog.handler.addFilter(RequestIdFilter())
    mast.set_fault(TCES_GLOB, status=503)
    with caplog.at_level(logging.INFO):
        failed = await client.get(TCES, headers={"X-Request-ID": "logged-1"})
        other = await client.get("/health", headers={"X-Request-ID": "logged-2"})
    assert failed.status_code == 503
    assert other.status_code == 200
    mine = [record for record in caplog.records if getattr(record, "request_id", None) == "logged-1"]
    assert {record.name for record in mine} >= {"service.errors", "service.access"}, "the warning and the access line"
    access = next(record for record in mine if record.name == "service.access")
    assert (access.method, access.route, access.path, access.status) == ("GET", "/tic/{tic_id}/tces", TCES, 503)
    assert access.bytes == len(failed.content)
    assert access.aborted is False
    assert access.duration_ms > 0
    health = [record for record in caplog.records if getattr(record, "request_id", None) == "logged-2"]
    assert [record.name for record in health] == ["service.access"]


@pytest.mark.process
def test_python_m_service_writes_json_lines_with_request_ids(mast, tmp_path, unused_tcp_port):
    env = service_env(mast, tmp_path / "cache", TESS_SERVICE_PORT=str(unused_tcp_port), TESS_SERVICE_LOG_FORMAT="json")
    base = f"http://127.0.0.1:{unused_tcp_port}"
    server = spawn(module_command(), env, base, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        mast.set_fault(TCES_GLOB, status=504)
        answer = httpx.get(f"{base}{TCES}", headers={"X-Request-ID": "json-log-1"}, timeout=10)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert answer.status_code == 504
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    assert {"timestamp", "level", "logger", "message", "request_id"} <= set(lines[0]), "every line is a JSON object"
    assert any(line["logger"].startswith("uvicorn") for line in lines), "uvicorn's own lines are JSON too"
    mine = [line for line in lines if line["request_id"] == "json-log-1"]
    access = next(line for line in mine if line["logger"] == "service.access")
    assert access["level"] == "INFO"
    assert (access["method"], access["route"], access["path"], access["status"]) == (
        "GET",
        "/tic/{tic_id}/tces",
        TCES,
        504,
    )
    assert access["bytes"] == len(answer.content)
    assert access["duration_ms"] > 0
    assert any(line["logger"] == "service.errors" and line["level"] == "WARNING" for line in mine)
    assert not any(line["logger"] == "uvicorn.access" for line in lines), "one access line per request, ours"


def _sample(name: str, scraped: str | None = None, **labels: str) -> float:
    """Return one sample's value from a scrape (or from this process's registry when not given), 0 when absent."""
    if scraped is None:
        from prometheus_client import REGISTRY, generate_latest

        scraped = generate_latest(REGISTRY).decode()
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                return sample.value
    return 0.0
