"""Every upstream call site × every fault the emulator can inject, through HTTP; and the circuit breaker.

Each case asserts the exact problem status, that the problem is problem+json and names the upstream,
``Retry-After`` exactly where retrying can help, how many requests reached the emulator (the attempts: retried
faults are tried ``ATTEMPTS`` times, others once), and that nothing was cached: once the fault clears, the same
request asks the upstream once more and succeeds with ``X-Cache: MISS``.

Connect-refused points the upstream's base URL at a closed port; the recovery then runs on a second app over the
same cache directory, pointed at the emulator again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from service.infra.metrics import UPSTREAM_RETRIES
from tests.conftest import WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio

ATTEMPTS = 3
NO_DV_TIC = 206462606  # in the TIC catalog, no DV products: its position comes from the catalog
POSITION = {"ra": 107.27, "dec": -70.0}
# Tiny waits, retries on: the whole matrix runs in seconds.
FAST = {
    "upstream_max_attempts": ATTEMPTS,
    "upstream_backoff_s": 0.001,
    "tesscut_max_attempts": ATTEMPTS,
    "tesscut_backoff_s": 0.001,
    "tesscut_starts_per_s": 5.0,
}


@dataclass(frozen=True)
class Site:
    """One upstream call site: the request that reaches it and where the emulator counts it."""

    upstream: str
    endpoint: str  # the emulator's endpoint name
    glob: str  # the emulator's fault path pattern
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    url_setting: str = "mast_url"
    json: bool = True  # the site parses JSON (else a zip)


SITES = {
    "tces": Site("ExoMAST", "exomast.tces", "/api/v0.1/dvdata/tess/*/tces/", f"/tic/{WEIRD_TIC}/tces",
                 url_setting="exomast_url"),
    "info": Site("ExoMAST", "exomast.info", "/api/v0.1/dvdata/tess/*/info/", f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}",
                 url_setting="exomast_url"),
    "table": Site("ExoMAST", "exomast.table", "/api/v0.1/dvdata/tess/*/table/",
                  f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve", {"columns": "TIME"}, url_setting="exomast_url"),
    "catalog": Site("MAST TIC catalog", "mast.invoke", "/api/v0/invoke*", f"/tic/{NO_DV_TIC}/sectors"),
    "sector": Site("TESScut", "tesscut.sector", "/tesscut/api/v0.1/sector*", "/sectors", POSITION),
    "astrocut": Site("TESScut", "tesscut.astrocut", "/tesscut/api/v0.1/astrocut*", "/cutout",
                     {**POSITION, "size": 5, "sector": 1, "format": "json"}, json=False),
}  # fmt: skip


@dataclass(frozen=True)
class Fault:
    """One injected fault and what every site answers to it (unless ``per_site`` says otherwise)."""

    inject: dict[str, Any]
    status: int
    retried: bool
    settings: dict[str, Any] = field(default_factory=dict)
    per_site: dict[str, tuple[int, bool]] = field(default_factory=dict)  # site -> (status, retried)


FAULTS = {
    "500": Fault({"status": 500}, 502, retried=False),
    "503": Fault({"status": 503}, 503, retried=True),
    "504-nginx": Fault({"status": 504}, 504, retried=True),
    "read-timeout": Fault(
        {"delay_s": 0.5}, 504, retried=True, settings={"upstream_read_timeout_s": 0.2, "tesscut_read_timeout_s": 0.2}
    ),
    "dropped-mid-body": Fault({"body": "truncate"}, 502, retried=True),
    "closed-without-answer": Fault({"body": "drop"}, 502, retried=True),
    "truncated-json-or-zip": Fault({"body": "malformed"}, 502, retried=False),
    "html-page-200": Fault({"body": "html"}, 502, retried=False),
    # The JSON body itself is fine: ExoMAST's client insists on a JSON type, the catalog and TESScut (like
    # astroquery) read the body for what it is, so there the right answer is served and cached.
    "wrong-content-type": Fault(
        {"content_type": "text/html"},
        502,
        retried=False,
        per_site={"catalog": (200, False), "sector": (200, False), "astrocut": (200, False)},
    ),
}


def retries(site_name: str) -> float:
    site = SITES[site_name]
    return UPSTREAM_RETRIES.labels(site.upstream, site_name)._value.get()


def assert_problem(response, status: int, upstream: str, retried: bool) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    problem = response.json()
    assert problem["status"] == status and problem["upstream"] == upstream
    assert problem["retryable"] is True
    assert "<" not in problem["detail"], "gateway HTML pages are summarised, not pasted"
    if retried:
        assert int(response.headers["retry-after"]) >= 1, "retrying later can help: say when"
    else:
        assert "retry-after" not in response.headers, "the same request would fail the same way"
    return problem


@pytest.mark.parametrize("site_name", SITES)
@pytest.mark.parametrize("fault_name", FAULTS)
async def test_fault(make_client, mast, fault_name, site_name):
    fault, site = FAULTS[fault_name], SITES[site_name]
    status, retried = fault.per_site.get(site_name, (fault.status, fault.retried))
    attempts = ATTEMPTS if retried else 1
    async with make_client(**FAST, **fault.settings) as client:
        mast.set_fault(site.glob, **fault.inject)
        retries_before = retries(site_name)
        answer = await client.get(site.path, params=site.params)
        assert mast.count(endpoint=site.endpoint) == attempts
        assert retries(site_name) - retries_before == attempts - 1
        if status == 200:
            # A body that is right whatever its label: served, and cached like any good answer.
            assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"
            assert (await client.get(site.path, params=site.params)).headers["x-cache"] == "HIT"
            assert mast.count(endpoint=site.endpoint) == 1
            return
        assert_problem(answer, status, site.upstream, retried)

        mast.clear_faults()
        recovered = await client.get(site.path, params=site.params)
        assert recovered.status_code == 200
        assert recovered.headers["x-cache"] == "MISS", "nothing from the failed request was cached"
        assert mast.count(endpoint=site.endpoint) == attempts + 1


CLOSED_PORT_SITES = {
    "tces": SITES["tces"],
    "info": SITES["info"],
    "table": SITES["table"],
    "catalog": SITES["catalog"],
    "sector": SITES["sector"],
    # The TIC route, so the sector lookup can be answered from the cache (primed through the position route,
    # which shares it) while the cutout itself has to go to the closed port.
    "astrocut": Site("TESScut", "tesscut.astrocut", "", f"/tic/{WEIRD_TIC}/cutout", {"size": 5, "sector": 1}),
}


@pytest.mark.parametrize("site_name", CLOSED_PORT_SITES)
async def test_connect_refused(make_client, mast, unused_tcp_port, site_name):
    site = CLOSED_PORT_SITES[site_name]
    closed = f"http://127.0.0.1:{unused_tcp_port}" + ("/api/v0.1/" if site.url_setting == "exomast_url" else "")
    if site_name in ("info", "table", "astrocut"):
        async with make_client(**FAST) as client:  # what the site needs from another upstream, cached first
            primer = {"info": "/tic/{t}/tces", "table": "/tic/{t}/tces", "astrocut": "/cutout"}[site_name]
            params = {"ra": 340.8004, "dec": -36.3439, "size": 5, "sector": 1} if site_name == "astrocut" else {}
            assert (await client.get(primer.format(t=WEIRD_TIC), params=params)).status_code == 200
    if site_name in ("info", "table"):
        closed_settings = {"exomast_url": closed}
    else:
        closed_settings = {site.url_setting: closed}
    before = mast.count(endpoint=site.endpoint)
    retries_before = UPSTREAM_RETRIES.labels(site.upstream, site_name)._value.get()
    async with make_client(**FAST, **closed_settings) as client:
        failed = await client.get(site.path, params=site.params)
    problem = assert_problem(failed, 503, site.upstream, retried=True)
    assert "could not be reached" in problem["detail"]
    assert UPSTREAM_RETRIES.labels(site.upstream, site_name)._value.get() - retries_before == ATTEMPTS - 1
    async with make_client(**FAST) as client:  # the same cache directory, the emulator reachable again
        recovered = await client.get(site.path, params=site.params)
    assert recovered.status_code == 200
    assert recovered.headers["x-cache"] == "MISS"
    assert mast.count(endpoint=site.endpoint) == before + 1


@pytest.mark.slow
async def test_a_dripping_tesscut_download_ends_at_the_deadline(make_client, mast):
    # Each read gets bytes well within the read timeout, so only the overall deadline can end this download.
    mast.set_fault(SITES["astrocut"].glob, throttle_bytes_per_s=50_000)
    async with make_client(tesscut_deadline_s=1.0, tesscut_read_timeout_s=30.0) as client:
        failed = await client.get(SITES["astrocut"].path, params=SITES["astrocut"].params)
        problem = assert_problem(failed, 504, "TESScut", retried=True)
        assert "within the service's deadline" in problem["detail"]
        assert mast.count(endpoint="tesscut.astrocut") == 1, "no time left for another attempt"
        mast.clear_faults()
        recovered = await client.get(SITES["astrocut"].path, params=SITES["astrocut"].params)
        assert recovered.status_code == 200 and recovered.headers["x-cache"] == "MISS"


@pytest.mark.parametrize("site_name", ["tces", "catalog", "sector", "astrocut"])
async def test_upstream_500s_open_the_breaker(make_client, mast, site_name):
    # astroquery turns TESScut's 500 into InvalidQueryError, which once hid the status from the breaker.
    site, threshold = SITES[site_name], 2
    async with make_client(**FAST, breaker_failure_threshold=threshold, breaker_reset_s=60) as client:
        mast.set_fault(site.glob, status=500)
        for _ in range(threshold):
            assert_problem(await client.get(site.path, params=site.params), 502, site.upstream, retried=False)
        refused = await client.get(site.path, params=site.params)
        assert refused.status_code == 503 and refused.json()["breaker"] == "open"
        assert mast.count(endpoint=site.endpoint) == threshold, "a 500 is not retried, and the third is refused"


@pytest.mark.parametrize("site_name", ["tces", "sector", "astrocut"])
async def test_upstream_400s_do_not_count_towards_the_breaker(make_client, mast, site_name):
    site = SITES[site_name]
    async with make_client(**FAST, breaker_failure_threshold=1, breaker_reset_s=60) as client:
        mast.set_fault(site.glob, status=400, times=2)
        for _ in range(2):
            assert_problem(await client.get(site.path, params=site.params), 502, site.upstream, retried=False)
        recovered = await client.get(site.path, params=site.params)
        assert recovered.status_code == 200, "a 400 says the upstream is up: the breaker stayed closed"
