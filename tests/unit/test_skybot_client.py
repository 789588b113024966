"""`SkybotClient` over real HTTP against the emulator's SkyBoT cone search, and its VOTable parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.errors import BadUpstreamResponse, CircuitOpen, UpstreamUnavailable
from service.infra.threads import Limiters
from service.upstream.http import Budget
from service.upstream.resilience import CircuitBreaker, RetryPolicy, UpstreamGuard
from service.upstream.skybot import (
    UPSTREAM,
    SkybotClient,
    SolarSystemObject,
    parse_cone_search,
    parse_sexagesimal,
)
from tests.fake_mast import FakeMast
from tests.fake_mast.catalogs import catalogue_positions
from tests.fake_mast.scene import MOVER_CLOSEST_BTJD, mover_sky_position
from tests.fake_mast.skybot import error_votable

pytestmark = pytest.mark.anyio

CLOSEST_JD = MOVER_CLOSEST_BTJD + 2457000.0
WEIRD = next((ra, dec) for tic, ra, dec, _ in catalogue_positions() if tic == 214568914)
SKYBOT_GLOB = "/webservices/skybot/*"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


def make_client(http: httpx.AsyncClient, mast: FakeMast, *, failure_threshold: int = 1000) -> SkybotClient:
    breaker = CircuitBreaker(UPSTREAM, failure_threshold=failure_threshold, reset_s=60)
    guard = UpstreamGuard(breaker, RetryPolicy(max_attempts=3, backoff_s=0.001, deadline_s=10.0))
    limiters = Limiters.create(cpu_threads=1, io_threads=1)
    return SkybotClient(http, mast.skybot_url, limiters, guard, Budget(UPSTREAM, 1 << 20, 10.0))


async def test_finds_the_body_near_tic_214568914_at_the_scenes_epoch(http: httpx.AsyncClient, mast: FakeMast) -> None:
    found = await make_client(http, mast).cone_search(*WEIRD, 0.05, CLOSEST_JD)
    assert len(found) == 1
    body = found[0]
    assert isinstance(body, SolarSystemObject)
    assert (body.name, body.number, body.object_class) == ("2002 TV318", 90917, "MB>Middle")
    assert body.v_mag == pytest.approx(15.3)
    ra, dec = mover_sky_position(MOVER_CLOSEST_BTJD)
    assert body.ra_deg == pytest.approx(ra, abs=1e-5)  # 0.0001 s of RA, 0.001″ of Dec as written
    assert body.dec_deg == pytest.approx(dec, abs=1e-6)
    assert 40 < body.distance_arcsec < 65  # 2.5 TESS pixels of 21″
    assert 30 < abs(complex(body.ra_rate_arcsec_per_h, body.dec_rate_arcsec_per_h)) < 40  # 40 px/day


async def test_finds_nothing_elsewhere_or_at_another_epoch(http: httpx.AsyncClient, mast: FakeMast) -> None:
    client = make_client(http, mast)
    assert await client.cone_search(10.0, 40.0, 1.0, CLOSEST_JD) == []
    assert await client.cone_search(*WEIRD, 0.05, CLOSEST_JD + 5) == []


async def test_sends_astroquerys_parameters(http: httpx.AsyncClient, mast: FakeMast) -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    http.event_hooks["request"].append(record)
    await make_client(http, mast).cone_search(*WEIRD, 0.05, CLOSEST_JD)
    params = seen[0].url.params
    assert seen[0].url.path == "/webservices/skybot/api/conesearch.php"
    assert float(params["-ep"]) == CLOSEST_JD and float(params["-rd"]) == 0.05
    assert (params["-loc"], params["-mime"], params["-refsys"]) == ("C57", "votable", "EQJ2000")


async def test_a_503_then_success_is_retried(http: httpx.AsyncClient, mast: FakeMast) -> None:
    mast.set_fault(SKYBOT_GLOB, status=503, times=1)
    found = await make_client(http, mast).cone_search(*WEIRD, 0.05, CLOSEST_JD)
    assert [body.number for body in found] == [90917]
    assert mast.count(endpoint="skybot.conesearch") == 2


@pytest.mark.parametrize("kind", ["malformed", "html", "empty"])
async def test_a_body_that_is_not_a_votable_is_a_bad_upstream_response(
    http: httpx.AsyncClient, mast: FakeMast, kind: str
) -> None:
    mast.set_fault(SKYBOT_GLOB, body=kind)
    with pytest.raises(BadUpstreamResponse) as raised:
        await make_client(http, mast).cone_search(*WEIRD, 0.05, CLOSEST_JD)
    assert raised.value.extensions["upstream"] == UPSTREAM


async def test_skybots_refusal_is_a_bad_upstream_response(http: httpx.AsyncClient, mast: FakeMast) -> None:
    with pytest.raises(BadUpstreamResponse, match="HTTP 400"):
        await make_client(http, mast).cone_search(*WEIRD, 12.0, CLOSEST_JD)  # radius past SkyBoT's 10°


async def test_an_open_breaker_refuses_without_asking(http: httpx.AsyncClient, mast: FakeMast) -> None:
    client = make_client(http, mast, failure_threshold=1)
    mast.set_fault(SKYBOT_GLOB, status=503)
    with pytest.raises(UpstreamUnavailable) as first:
        await client.cone_search(*WEIRD, 0.05, CLOSEST_JD)
    assert not isinstance(first.value, CircuitOpen), "the first failure is SkyBoT's own 503"
    asked = mast.count(endpoint="skybot.conesearch")
    with pytest.raises(CircuitOpen):
        await client.cone_search(*WEIRD, 0.05, CLOSEST_JD)
    assert mast.count(endpoint="skybot.conesearch") == asked


def test_an_error_status_inside_the_votable_is_a_bad_upstream_response() -> None:
    with pytest.raises(BadUpstreamResponse, match="Invalid radius"):
        parse_cone_search(error_votable("Invalid radius of the FOV"))


def test_a_votable_without_the_columns_is_a_bad_upstream_response() -> None:
    votable = (
        b'<?xml version="1.0"?><VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE>'
        b'<INFO name="QUERY_STATUS" value="OK"/><TABLE><FIELD name="x" ID="x" datatype="int"/>'
        b"<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    )
    with pytest.raises(BadUpstreamResponse, match="lacks the columns"):
        parse_cone_search(votable)


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [("22 43 12.0960", 15.0, 340.8004), ("-36 20 38.040", 1.0, -36.3439), ("-00 30 00.0", 1.0, -0.5)],
)
def test_sexagesimal(text: str, scale: float, expected: float) -> None:
    assert parse_sexagesimal(text, scale=scale) == pytest.approx(expected, abs=1e-6)
