"""Stale-if-error for FFI cutouts: an expired cutout is served, marked and unchanged while TESScut fails."""

import hashlib
import io
import zipfile

import pytest
from prometheus_client import REGISTRY

from service.errors import NotFound, Overloaded, UpstreamUnavailable
from service.infra.cache import DiskCache
from service.infra.threads import Admission, Limiters
from service.services.answers import SlowAnswers
from service.services.artifacts import ArtifactStore
from service.services.cutouts import CutoutPlan, CutoutService
from service.services.jobs import Job, JobRegistry
from service.services.targets import Target
from service.services.workshop import Workshop
from service.upstream.tesscut import SectorCcd
from tests.api.test_stale_if_error import assert_stale, cache_entries
from tests.clock import FakeClock
from tests.conftest import WEIRD_TIC
from tests.polling import poll_job

pytestmark = pytest.mark.anyio

ASTROCUT_GLOB = "/tesscut/api/v0.1/astrocut*"
MIRROR = "/tesscut/api/v0.1/astrocut"
TIC_CUTOUT = f"/tic/{WEIRD_TIC}/cutout"
# Small cutouts of a named sector, each at most 1 s fresh; one attempt per download and a breaker that stays
# closed unless a test opens it, so emulator counts are exact.
SMALL = {"sector": 1, "size": 5}
MIRROR_SMALL = {"ra": 340.8004, "dec": -36.3439, "x": 5, "y": 5, "units": "px", "sector": 1}
FAST = {"ttl_cutout_s": 1, "tesscut_max_attempts": 1, "breaker_failure_threshold": 100}
WORDS = "TESScut failed (503"


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("tess_cache_lookups_total", {"result": result}) or 0.0


def astrocut_calls(mast) -> int:
    return mast.count(endpoint="tesscut.astrocut")


@pytest.fixture
def clock() -> FakeClock:
    """The cache's clock: `expire` moves it past ``ttl_cutout_s=1`` at once."""
    return FakeClock()


def expire(clock: FakeClock) -> None:
    clock.advance(1.05)  # past ttl_cutout_s=1


def assert_fresh(response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["x-cache"] == "MISS"
    assert "warning" not in response.headers and "x-stale-reason" not in response.headers


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 504}, {"status": 500}], ids=["503", "504", "500"])
async def test_expired_tic_cutout_is_served_stale_while_tesscut_fails(make_client, clock, make_settings, mast, fault):
    cache_dir = make_settings().cache_dir
    async with make_client(cache_clock=clock, **FAST) as client:
        fits = await client.get(TIC_CUTOUT, params=SMALL)
        summary = await client.get(TIC_CUTOUT, params={**SMALL, "format": "json"})
        assert_fresh(fits)
        assert summary.status_code == 200 and summary.headers["x-cache"] == "HIT"
        assert astrocut_calls(mast) == 1
        expire(clock)
        before, stale_before = cache_entries(cache_dir), lookups("stale")

        mast.set_fault(ASTROCUT_GLOB, **fault)
        stale = await client.get(TIC_CUTOUT, params=SMALL)
        assert_stale(stale, f"TESScut failed ({ {500: 502}.get(fault['status'], fault['status']) }")
        assert hashlib.sha256(stale.content).digest() == hashlib.sha256(fits.content).digest()
        assert stale.headers["etag"] == fits.headers["etag"]
        assert stale.headers["content-disposition"] == fits.headers["content-disposition"]
        stale_summary = await client.get(TIC_CUTOUT, params={**SMALL, "format": "json"})
        assert_stale(stale_summary, "TESScut failed (")
        assert stale_summary.json() == summary.json()
        assert astrocut_calls(mast) == 3, "each stale answer asked TESScut first"
        assert cache_entries(cache_dir) == before, "nothing was rewritten or added while serving stale"
        assert lookups("stale") >= stale_before + 2

        mast.clear_faults()
        recovered = await client.get(TIC_CUTOUT, params=SMALL)
        assert_fresh(recovered)
        assert recovered.content == fits.content
        assert (await client.get(TIC_CUTOUT, params=SMALL)).headers["x-cache"] == "HIT"
        assert astrocut_calls(mast) == 4


async def test_position_cutout_and_an_open_breaker(make_client, clock, mast):
    params = {"ra": 340.8004, "dec": -36.3439, **SMALL}
    async with make_client(cache_clock=clock, **{**FAST, "breaker_failure_threshold": 1}) as client:
        first = await client.get("/cutout", params=params)
        assert_fresh(first)
        expire(clock)
        mast.set_fault(ASTROCUT_GLOB, status=503)
        answers = [await client.get("/cutout", params=params) for _ in range(3)]
        for answer in answers:
            assert_stale(answer, "TESScut")
            assert answer.content == first.content
        assert "circuit" in answers[-1].headers["x-stale-reason"].lower()
        # One download filled the cache, one attempt failed and opened the breaker; the rest never reached TESScut.
        assert astrocut_calls(mast) == 2


async def test_without_a_stale_window_the_error_is_answered(make_client, clock, mast):
    async with make_client(cache_clock=clock, **FAST, stale_if_error_s=0) as client:
        assert_fresh(await client.get(TIC_CUTOUT, params=SMALL))
        expire(clock)
        mast.set_fault(ASTROCUT_GLOB, status=503)
        for fmt in ("fits", "json"):
            failed = await client.get(TIC_CUTOUT, params={**SMALL, "format": fmt})
            assert failed.status_code == 503
            assert failed.headers["content-type"] == "application/problem+json"
            assert "x-stale-reason" not in failed.headers
        mirror = await client.get(MIRROR, params=MIRROR_SMALL)
        assert mirror.status_code == 503 and mirror.headers["content-type"] == "application/problem+json"


async def test_only_upstream_failures_fall_back_to_the_expired_copy(tmp_path):
    # TESScut's "no FFIs here" (NotFound) comes as a 200 the emulator cannot be told to send for a covered
    # position, so the rule is checked on the service itself: a real cache holding an expired cutout.
    cache = DiskCache(tmp_path, size_limit_bytes=2**24)
    store = ArtifactStore(cache, Limiters.create(cpu_threads=1, io_threads=2))
    pool = Admission("cutout", running=1, waiting=1, retry_after_s=1)
    jobs = JobRegistry(60)
    workshop = Workshop(store, cache, jobs, SlowAnswers(jobs, default_wait_s=60.0), store._limiters)
    cutouts = CutoutService(workshop, None, pool=pool, ttl_sectors_s=1, ttl_cutout_s=1)
    plan = CutoutPlan(Target(340.8004, -36.3439), 5, 1, (SectorCcd(1, 1, 2),), sector_pinned=True)
    cache.put(plan.fits_key, b"SIMPLE", media_type="application/fits", ttl_s=0)

    def failed(error):
        return Job(id="0" * 32, key=plan.fits_key, result_url="/cutout", status="failed", error=error)

    served = await cutouts.after_job(plan, failed(UpstreamUnavailable("down", upstream="TESScut")), "fits")
    assert served.body.read() == b"SIMPLE" and "TESScut failed (503" in served.body.stale_reason
    for error in (NotFound("no FFIs"), Overloaded("full", pool="cutout", retry_after_s=1)):
        with pytest.raises(type(error)):
            await cutouts.after_job(plan, failed(error), "fits")
    cache.close()


async def test_mirror_zip_is_rebuilt_from_the_expired_files(make_client, clock, make_settings, mast):
    cache_dir = make_settings().cache_dir
    async with make_client(cache_clock=clock, **FAST) as client:
        first = await client.get(MIRROR, params=MIRROR_SMALL)
        assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
        expire(clock)
        before = cache_entries(cache_dir)
        mast.set_fault(ASTROCUT_GLOB, status=503)
        stale = await client.get(MIRROR, params=MIRROR_SMALL)
        assert_stale(stale, WORDS)
        assert stale.content == first.content and stale.headers["etag"] == first.headers["etag"]
        assert zipfile.ZipFile(io.BytesIO(stale.content)).namelist()
        assert astrocut_calls(mast) == 2
        assert cache_entries(cache_dir) == before

        mast.clear_faults()
        fresh = await client.get(MIRROR, params=MIRROR_SMALL)
        assert fresh.status_code == 200 and fresh.headers["x-cache"] == "MISS"
        assert "x-stale-reason" not in fresh.headers
        assert astrocut_calls(mast) == 3


async def test_movie_needing_an_expired_cutout_answers_the_error_and_caches_nothing(
    make_client, clock, make_settings, mast
):
    # A movie job's result is read back from the cache, where a movie made from stale data must not go; until a
    # render job can hand such a movie to its waiters, the movie answers TESScut's error (see CutoutService.ensure).
    cache_dir = make_settings().cache_dir
    params = {"start": 1334, "end": 1334.2, **SMALL}
    async with make_client(cache_clock=clock, **FAST) as client:
        assert_fresh(await client.get(TIC_CUTOUT, params=SMALL))
        expire(clock)
        before = cache_entries(cache_dir)
        mast.set_fault(ASTROCUT_GLOB, status=503)
        failed = await client.get(f"/tic/{WEIRD_TIC}/movie", params=params)
        assert failed.status_code == 503 and failed.headers["content-type"] == "application/problem+json"
        assert cache_entries(cache_dir) == before, "no movie cached from the expired cutout"
        mast.clear_faults()
        movie = await client.get(f"/tic/{WEIRD_TIC}/movie", params=params)
        assert movie.status_code == 200 and movie.headers["content-type"] == "image/gif"
        assert "x-stale-reason" not in movie.headers


@pytest.mark.slow
async def test_a_job_that_fails_while_an_expired_copy_exists(make_client, clock, mast):
    async with make_client(cache_clock=clock, **FAST) as client:
        fits = await client.get(TIC_CUTOUT, params=SMALL)
        assert_fresh(fits)
        expire(clock)
        mast.set_fault(ASTROCUT_GLOB, status=503, delay_s=0.3)
        accepted = await client.get(TIC_CUTOUT, params={**SMALL, "wait": 0})
        assert accepted.status_code == 202, "wait=0: the refresh is a job, as for any cutout not fresh"
        job = (await poll_job(client, accepted)).json()
        # The refresh failed and nothing new was made: the job says so, with TESScut's problem.
        assert job["status"] == "failed" and job["result_url"] is None
        assert job["problem"]["status"] == 503 and job["problem"]["upstream"] == "TESScut"
        # Asking again (the 202's `then`, without wait=0) tries TESScut once more, then serves the expired copy.
        then = accepted.json()["then"]
        assert "wait" not in then
        stale = await client.get(then)
        assert_stale(stale, WORDS)
        assert stale.content == fits.content
        assert astrocut_calls(mast) == 3
