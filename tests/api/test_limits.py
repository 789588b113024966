"""Limits on what one request can make the service do, each a clear 4xx before any costly work starts.

Limits tested elsewhere are not repeated here: cutout side 1..100 and the 10,000-pixel TESScut mirror limit
(test_cutouts, test_tesscut_mirror), movie frames and non-finite windows (test_movies), the mirror's 16 KiB form
body, declared and chunked (test_tesscut_mirror). What the HTTP server itself bounds (the request line) is tested
through a real uvicorn process, since the in-process transport has no parser. The bound on request headers (431) is
`python -m service`'s own and lives in test_header_limits.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.conftest import WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio

PLOT = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve.png"
SECTOR = "/tesscut/api/v0.1/sector"
ASTROCUT = "/tesscut/api/v0.1/astrocut"
WEIRD = {"ra": 340.8004, "dec": -36.3439}
PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"width": 3001}, "width"),
        ({"height": 2001}, "height"),
        ({"height": 149}, "height"),
        ({"dpi": 301}, "dpi"),
        ({"dpi": 49}, "dpi"),
    ],
)
async def test_plot_size_beyond_its_limits_is_422_before_any_upstream_call(client, mast, params, name):
    response = await client.get(PLOT, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert f"query parameter '{name}'" in response.json()["detail"]
    assert mast.count() == 0


async def test_movie_output_budget_is_refused_before_the_cutout_is_fetched(make_client, mast):
    # 49 frames of 400 x 400 px is about 7.5 MiB of pixels: over a 1 MiB budget.
    async with make_client(movie_max_output_mb=1) as client:
        response = await client.get(
            f"/tic/{WEIRD_TIC}/movie", params={"start": 1334, "end": 1335, "sector": 1, "size": 50, "scale": 8}
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert "too large" in response.json()["detail"]
    assert mast.count(endpoint="tesscut.astrocut") == 0


async def test_a_radius_that_overflows_is_a_400_not_a_502(client, mast):
    response = await client.get(SECTOR, params={**WEIRD, "radius": "1e400"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert "Invalid radius" in response.json()["msg"]
    assert mast.count(endpoint="tesscut.sector") == 0


async def test_a_radius_past_the_whole_sky_is_taken_as_the_whole_sky(client):
    huge, whole_sky = [await client.get(SECTOR, params={**WEIRD, "radius": r}) for r in ("1e300", "180")]
    assert huge.status_code == whole_sky.status_code == 200
    assert huge.json() == whole_sky.json()


def _raw_exchange(base_url: str, request: bytes) -> bytes:
    """Send raw bytes to the running service and return everything it answers before closing."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_declared_oversized_form_is_refused_before_its_body_arrives(running_service):
    # Only the headers are sent: answering at all proves the service did not wait for a gigabyte.
    head = (
        f"POST {ASTROCUT} HTTP/1.1\r\nHost: service\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 1000000000\r\n\r\n"
    )
    answer = _raw_exchange(running_service, head.encode())
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"content-type: application/problem+json" in rest.lower()


def test_the_server_refuses_a_request_line_over_64_kib(running_service):
    # uvicorn (httptools) bounds the request target at 64 KiB: past it, a plain 400 before the app is called.
    # (httpx refuses to build such a URL, hence raw bytes.)
    request = f"GET /tic/{WEIRD_TIC}/tces?pad={'x' * 70_000} HTTP/1.1\r\nHost: service\r\n\r\n"
    assert _raw_exchange(running_service, request.encode()).startswith(b"HTTP/1.1 400")
    assert httpx.get(f"{running_service}/health", timeout=30).status_code == 200


async def test_thousands_of_repeated_parameters_are_read_once(running_service, mast):
    # Within the 64 KiB request line: the first value counts (as upstream reads it), the rest cost a parse.
    async with httpx.AsyncClient(base_url=running_service, timeout=60) as http:
        sectors = await http.get(SECTOR, params=[*WEIRD.items(), *[("ra", "107.27"), ("dec", "-70")] * 3000])
        info = await http.get(
            f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/info/",
            params=[("tce", "TCE_1"), ("sector", "s0001-s0001"), *[("tce", "TCE_9")] * 5000],
        )
    assert sectors.status_code == 200
    assert [hit["sectorName"] for hit in sectors.json()["results"]] == ["tess-s0001-1-2"]  # the first position's
    assert info.status_code == 200 and info.json()["DV Data Header"]["EXTNAME"] == "TCE_1"
    assert mast.count(endpoint="tesscut.sector") == 1
