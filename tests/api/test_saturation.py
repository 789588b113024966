"""Saturation: the cutout and render pools admit a bounded amount of work and refuse more at once with a 503.

The emulator's TESScut is slowed so work piles up; the pools are made tiny through settings. Each test checks what
a client sees over HTTP: past the bound a new piece of work is a 503 problem with Retry-After while the work that
filled the pool is still running, /health, cache hits and requests joining running work are still answered, and
once the pile has drained new work is accepted again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.deps import Services
from service.main import create_app
from service.settings import Settings
from tests.conftest import WASP126_TIC, WEIRD_TIC
from tests.polling import poll_job, wait_until_async

# Slow: each test fills a pool with work held up by a slowed emulator, then drains it.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ASTROCUT = "/tesscut/api/v0.1/astrocut"
SECTOR_LOOKUP = "/tesscut/api/v0.1/sector"
# A position in the southern continuous viewing zone: the emulator's TESScut has sectors 1-13 and 33 for it.
CVZ = {"ra": 63.37389, "dec": -69.226789, "size": 5}
WEIRD = {"ra": 340.8004, "dec": -36.3439}


def cutout(sector: int, **extra: object) -> dict[str, object]:
    return {**CVZ, "sector": sector, **extra}


async def job_of(client: httpx.AsyncClient, response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 202, response.text
    return (await client.get(response.headers["location"])).json()


async def shed_count(client: httpx.AsyncClient, pool: str) -> float:
    text = (await client.get("/metrics")).text
    found = re.search(rf'^tess_pool_shed_total\{{pool="{pool}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def jobs_in(metrics: str, state: str) -> float:
    found = re.search(rf'^tess_jobs\{{state="{state}"\}} (\S+)$', metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def busy_jobs(metrics: str) -> float:
    return jobs_in(metrics, "queued") + jobs_in(metrics, "running")


@asynccontextmanager
async def open_app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """Like `make_client`, also yielding the app's services (to occupy its render thread)."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
            yield client, app.state.services


def assert_overloaded(response: httpx.Response, pool: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    problem = response.json()
    assert problem["type"] == "urn:tess-service:problem:overloaded"
    assert problem["retryable"] is True
    assert problem["pool"] == pool


async def test_a_full_cutout_pool_refuses_new_cutouts_and_still_serves_the_rest(make_client, mast):
    # Two TESScut slots and one waiting place: three cutouts admitted, the fourth refused.
    async with make_client(tesscut_max_in_flight=2, cutout_queue_max=1) as client:
        warm = await client.get("/cutout", params=cutout(13, wait=30))
        assert warm.status_code == 200
        mast.set_fault(ASTROCUT, delay_s=3.0)
        shed_before = await shed_count(client, "cutout")
        # tess_jobs is process-wide (every app of this pytest process counts into it): compare with a snapshot.
        jobs_before = (await client.get("/metrics")).text

        admitted = [await client.get("/cutout", params=cutout(sector, wait=0)) for sector in (1, 2, 3)]
        first_jobs = [await job_of(client, response) for response in admitted]
        refused = await client.get("/cutout", params=cutout(4, wait=0))
        assert_overloaded(refused, "cutout")
        # Refused at once: the work that filled the pool has not finished.
        still = (await client.get(admitted[0].headers["location"])).json()
        assert still["status"] in ("queued", "running")

        metrics = (await client.get("/metrics")).text
        assert 'tess_pool_in_use{pool="cutout"} 2.0' in metrics
        assert 'tess_pool_queue_depth{pool="cutout"} 1.0' in metrics
        assert await shed_count(client, "cutout") == shed_before + 1
        assert busy_jobs(metrics) - busy_jobs(jobs_before) == 3

        # While saturated: the process answers, a cached cutout is served, and identical work is joined.
        assert (await client.get("/health")).status_code == 200
        hit = await client.get("/cutout", params=cutout(13, wait=0))
        assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
        assert hit.content == warm.content
        joined = await client.get("/cutout", params=cutout(1, wait=0, format="json"))
        assert (await job_of(client, joined))["id"] == first_jobs[0]["id"]

        for response in admitted:
            assert (await poll_job(client, response)).json()["status"] == "done"
        mast.clear_faults()
        accepted = await client.get("/cutout", params=cutout(4, wait=30))
        assert accepted.status_code == 200
        drained = (await client.get("/metrics")).text
        assert 'tess_pool_in_use{pool="cutout"} 0.0' in drained
        assert busy_jobs(drained) == busy_jobs(jobs_before), "every job this test started has ended"
        assert jobs_in(drained, "done") - jobs_in(jobs_before, "done") == 4, "the three admitted and the late one"


async def test_fetching_data_holds_no_render_place(make_client, mast):
    # One render thread and no waiting place. A plot waits for a slow DV table and a movie for a slow cutout
    # download: neither is rendering, so both leave the render place free for work that can render now.
    movie = {**WEIRD, "sector": 1, "start": 1334.0, "end": 1334.5}
    async with make_client(render_threads=1, render_queue_max=0) as client:
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces/TCE_1/lightcurve")).status_code == 200  # its DV table
        assert (await client.get("/cutout", params={**WEIRD, "sector": 1, "size": 10, "wait": 30})).status_code == 200
        # Long enough that both are still fetching while the quick ones render, on a machine loaded by the browser
        # tests too (3 s was not: the slow plot sometimes got to render first).
        # Their own delays differ, so that the two slow ones do not reach the one render place at the same moment
        # (with no waiting place, the second would be refused: a 503 this test is not about).
        mast.set_fault(f"/api/v0.1/dvdata/tess/{WASP126_TIC}/table/", delay_s=6.0)
        mast.set_fault(ASTROCUT, delay_s=9.0)

        slow_plot = asyncio.ensure_future(client.get(f"/tic/{WASP126_TIC}/tces/TCE_1/lightcurve.png"))
        slow_movie = await client.get("/movie", params={**movie, "size": 12, "wait": 0})
        assert slow_movie.status_code == 202
        await wait_until_async(lambda: mast.count(endpoint="exomast.table"), 30, what="the DV table request")
        await wait_until_async(lambda: mast.count(endpoint="tesscut.astrocut"), 30, what="the cutout request")

        plot = await client.get(f"/tic/{WEIRD_TIC}/tces/TCE_1/lightcurve.png")
        assert plot.status_code == 200, plot.text
        assert plot.headers["content-type"] == "image/png"
        rendered = await client.get("/movie", params={**movie, "size": 10, "wait": 30})
        assert rendered.status_code == 200, rendered.text
        assert rendered.headers["content-type"] == "image/gif"

        assert (await slow_plot).status_code == 200
        assert (await poll_job(client, slow_movie)).json()["status"] == "done"


async def test_a_full_render_pool_refuses_new_renders_and_still_serves_cached_and_joined_ones(make_settings):
    # One render thread and one waiting place. The test holds the render thread itself, so the first new render
    # is admitted and waits for it, and the pool is then full for as long as the test likes.
    movie = {**WEIRD, "sector": 1, "start": 1334.0, "end": 1334.5}
    plot = f"/tic/{WEIRD_TIC}/tces/TCE_1/lightcurve.png"
    async with open_app(make_settings(render_threads=1, render_queue_max=0)) as (client, services):
        cached_movie = await client.get("/movie", params={**movie, "size": 10, "wait": 30})
        assert cached_movie.status_code == 200
        assert (await client.get(f"/tic/{WEIRD_TIC}/tces/TCE_1/lightcurve")).status_code == 200  # its DV table
        shed_before = await shed_count(client, "render")
        holder = object()
        await services.limiters.render.acquire_on_behalf_of(holder)
        try:
            admitted = asyncio.ensure_future(client.get(plot, params={"width": 600}))
            await wait_until_async(
                lambda: services.cutout_products.pool.admitted == 1, 30, what="the render's admission"
            )
            assert 'tess_pool_in_use{pool="render"} 1.0' in (await client.get("/metrics")).text
            joined = asyncio.ensure_future(client.get(plot, params={"width": 600}))

            assert_overloaded(await client.get(plot, params={"width": 700}), "render")
            assert_overloaded(await client.get("/movie", params={**movie, "size": 10, "fps": 10, "wait": 0}), "render")
            frame = await client.get(f"/tic/{WEIRD_TIC}/frame.png", params={"time": 1334.45, "wait": 0})
            assert_overloaded(frame, "render")
            assert await shed_count(client, "render") == shed_before + 3

            assert (await client.get("/health")).status_code == 200
            hit = await client.get("/movie", params={**movie, "size": 10, "wait": 0})
            assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
            assert hit.content == cached_movie.content
            assert not admitted.done() and not joined.done(), "both wait for the one render"
        finally:
            services.limiters.render.release_on_behalf_of(holder)

        first, second = await admitted, await joined
        assert first.status_code == second.status_code == 200
        assert first.content == second.content
        assert await shed_count(client, "render") == shed_before + 3, "the identical request joined, unrefused"
        assert (await client.get(plot, params={"width": 700})).status_code == 200
        frame = await client.get(f"/tic/{WEIRD_TIC}/frame.png", params={"time": 1334.45, "wait": 30})
        assert frame.status_code == 200 and frame.headers["content-type"] == "image/png"


async def test_wait_bounds_planning_behind_a_saturated_tesscut(make_client, mast):
    # One TESScut slot, held by a slow download: a new position's sector lookup has to queue behind it.
    async with make_client(tesscut_max_in_flight=1, cutout_queue_max=4) as client:
        assert (await client.get("/cutout", params={"ra": 10, "dec": 40, "wait": 0})).status_code == 404
        mast.set_fault(ASTROCUT, delay_s=2.0, times=1)
        slow = await client.get("/cutout", params=cutout(1, wait=0))
        await poll_job(client, slow, until=lambda job: job["status"] == "running", what="to be running")

        planned_late = await client.get("/cutout", params={**WEIRD, "size": 5, "sector": 1, "wait": 0})
        lookups_before = mast.count(endpoint="tesscut.sector")
        assert planned_late.status_code == 202, "wait=0 answers before the sector lookup can even start"
        assert (await client.get(slow.headers["location"])).json()["status"] == "running"
        off_detector = await client.get("/cutout", params={"ra": 11, "dec": 41, "wait": 0})
        assert off_detector.status_code == 202, "a lookup that cannot finish within wait goes on in the job"

        done = (await poll_job(client, planned_late)).json()
        assert done["status"] == "done"
        assert mast.count(endpoint="tesscut.sector") > lookups_before
        served = await client.get(done["result_url"])
        assert served.status_code == 200 and served.headers["x-cache"] == "HIT"
        failed = (await poll_job(client, off_detector)).json()
        assert failed["status"] == "failed"
        assert failed["problem"]["status"] == 404
