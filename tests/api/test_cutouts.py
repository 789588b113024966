"""Sectors, FFI cutouts and cutout jobs through HTTP, against the emulator's TESScut and TIC catalog."""

import asyncio
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tests.conftest import WEIRD_TIC
from tests.polling import poll_job

pytestmark = pytest.mark.anyio

ASTROCUT = "/tesscut/api/v0.1/astrocut"
SECTOR_LOOKUP = "/tesscut/api/v0.1/sector"
SAMPLE_ZIP = Path(__file__).resolve().parents[1] / "data" / "astrocut_107.27_-70.0_5x5.zip"
NO_DV_TIC = 206462606  # in the TIC catalog, no DV products
WEIRD_CUTOUT = f"/tic/{WEIRD_TIC}/cutout"


async def test_sectors_of_the_weird_tic_come_from_its_dv_position(client, mast):
    response = await client.get(f"/tic/{WEIRD_TIC}/sectors")
    assert response.status_code == 200
    body = response.json()
    assert body["position_source"] == "dv"
    assert (body["ra_deg"], body["dec_deg"]) == (340.8004, -36.3439)
    assert {"sector": 1, "camera": 1, "ccd": 2, "name": "tess-s0001-1-2"} in body["sectors"]
    assert mast.count(endpoint="mast.invoke") == 0, "a TIC with TCEs needs no catalog lookup"


async def test_a_tic_without_dv_data_is_placed_by_the_catalog(client, mast):
    body = (await client.get(f"/tic/{NO_DV_TIC}/sectors")).json()
    assert body["position_source"] == "catalog"
    assert body["ra_deg"] == pytest.approx(330.9041)
    assert mast.count(endpoint="mast.invoke") == 1


async def test_sectors_at_a_position_and_off_detector(client):
    body = (await client.get("/sectors", params={"ra": 107.27, "dec": -70.0})).json()
    assert {"sector": 1, "camera": 4, "ccd": 3, "name": "tess-s0001-4-3"} in body["sectors"]
    north = (await client.get("/sectors", params={"ra": 10, "dec": 40})).json()
    assert north["sectors"] == []


@pytest.mark.slow
async def test_tic_cutout_is_a_tpf_with_the_tic_in_its_header(client, mast):
    response = await client.get(WEIRD_CUTOUT, params={"sector": 1, "size": 50})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fits"
    assert 'filename="tic214568914_tess-s0001-1-2_50x50_astrocut.fits"' in response.headers["content-disposition"]
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["vary"] == "Accept", "FITS or JSON by Accept: shared caches must key on it"
    with fits.open(io.BytesIO(response.content)) as hdus:
        primary = hdus[0].header
        assert (primary["TICID"], primary["OBJECT"]) == (WEIRD_TIC, "TIC 214568914")
        assert primary["TESSMAG"] == pytest.approx(15.34)
        assert (primary["SECTOR"], primary["CAMERA"], primary["CCD"]) == (1, 1, 2)
        pixels = hdus["PIXELS"].data
        assert len(pixels) == 1282
        assert pixels["FLUX"].shape == (1282, 50, 50)
        time = pixels["TIME"]
        assert time.min() < 1334 and time.max() > 1335
        assert hdus["PIXELS"].columns["TIME"].unit == "BJD - 2457000, days"
    again = await client.get(WEIRD_CUTOUT, params={"sector": 1, "size": 50})
    assert again.headers["x-cache"] == "HIT"
    assert again.content == response.content
    assert mast.count(endpoint="tesscut.astrocut") == 1


async def test_cutout_summary(client):
    response = await client.get(WEIRD_CUTOUT, params={"size": 50, "format": "json"})
    assert response.status_code == 200
    summary = response.json()
    assert (summary["sector"], summary["camera"], summary["ccd"]) == (1, 1, 2)
    assert summary["shape"] == [50, 50] and summary["n_frames"] == 1282
    assert summary["cadence_minutes"] == pytest.approx(30, abs=0.1)
    assert summary["time_start_btjd"] < 1334 < 1335 < summary["time_end_btjd"]
    assert summary["target_pixel"]["x"] == pytest.approx(24.5, abs=1) and summary["target_pixel"]["y"] == pytest.approx(
        24.5, abs=1
    )
    assert (summary["ticid"], summary["tic_id"]) == (WEIRD_TIC, WEIRD_TIC)
    assert summary["position_source"] == "dv"
    assert "immutable" not in response.headers["cache-control"], "no sector named: the latest may change"
    max_age = int(response.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert max_age <= 86400, "no longer than the sector list it was chosen from stays fresh"


async def test_the_real_2018_sample_is_served_unmodified_and_summarised(client):
    params = {"ra": 107.27, "dec": -70.0, "size": 5, "sector": 1}
    fits_response = await client.get("/cutout", params=params)
    with zipfile.ZipFile(SAMPLE_ZIP) as sample:
        (member,) = sample.namelist()
        original = sample.read(member)
    assert hashlib.sha256(fits_response.content).hexdigest() == hashlib.sha256(original).hexdigest()
    summary = (await client.get("/cutout", params={**params, "format": "json"})).json()
    assert (summary["sector"], summary["camera"], summary["ccd"]) == (1, 4, 3), "SECTOR='' in the file itself"
    assert summary["shape"] == [5, 5] and summary["n_frames"] == 1282
    assert summary["ticid"] is None


@pytest.mark.slow
async def test_slow_cutout_answers_202_then_the_job_delivers(client, mast):
    mast.set_fault(ASTROCUT, throttle_bytes_per_s=8_000_000)
    accepted = await client.get(WEIRD_CUTOUT, params={"sector": 1, "wait": 0})
    assert accepted.status_code == 202
    assert accepted.headers["cache-control"] == "no-store"
    assert int(accepted.headers["retry-after"]) > 0
    location = accepted.headers["location"]
    assert location == f"/jobs/{accepted.json()['id']}"
    assert accepted.json()["then"] == f"{WEIRD_CUTOUT}?sector=1"

    seen_progress = []

    def done(job) -> bool:
        seen_progress.append(job["bytes_received"])
        if job["status"] == "done":
            return True
        assert job["status"] in ("queued", "running")
        return False

    job = (await poll_job(client, location, until=done, what="to be done")).json()
    assert job["status"] == "done"
    assert any(0 < b < seen_progress[-1] for b in seen_progress), "progress was visible while downloading"
    assert job["result_url"] == f"{WEIRD_CUTOUT}?sector=1"
    result = await client.get(job["result_url"])
    assert result.status_code == 200 and result.headers["x-cache"] == "HIT"
    # What arrived from MAST was the zip, smaller than the FITS inside it.
    assert 0 < job["bytes_received"] < len(result.content)


async def test_a_job_finishes_after_its_client_went_away(client, mast):
    mast.set_fault(ASTROCUT, delay_s=0.5)
    gone = await client.get("/cutout", params={"ra": 107.27, "dec": -70.0, "size": 5, "sector": 1, "wait": 0})
    assert gone.status_code == 202
    await poll_job(client, gone)
    back = await client.get("/cutout", params={"ra": 107.27, "dec": -70.0, "size": 5, "sector": 1})
    assert back.headers["x-cache"] == "HIT"
    assert mast.count(endpoint="tesscut.astrocut") == 1


@pytest.mark.slow
async def test_twenty_concurrent_cold_cutouts_make_one_astrocut_call(client, mast):
    mast.set_fault(ASTROCUT, delay_s=0.5)
    responses = await asyncio.gather(*(client.get(WEIRD_CUTOUT, params={"sector": 1, "size": 20}) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert mast.count(endpoint="tesscut.astrocut") == 1


@pytest.mark.slow  # thirty TESScut calls at its 5 starts per second
async def test_at_most_ten_tesscut_requests_in_flight(client, mast):
    mast.set_fault(ASTROCUT, delay_s=0.6)
    sizes = range(1, 16)  # fifteen different cutouts, all cold at once
    responses = await asyncio.gather(
        *(client.get("/cutout", params={"ra": 107.27, "dec": -70.0, "size": s, "sector": 1}) for s in sizes)
    )
    assert [r.status_code for r in responses] == [200] * 15
    assert mast.count(endpoint="tesscut.astrocut") == 15
    assert 2 <= mast.tesscut_in_flight_max() <= 10


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"ra": 10, "dec": 40}, 404, "on no detector"),
        ({"ra": 107.27, "dec": -70.0, "sector": 2}, 404, "Sector 2 did not observe"),
        ({"ra": 107.27, "dec": -70.0, "size": 101}, 422, "query parameter 'size'"),
        ({"ra": 107.27, "dec": -70.0, "size": 0}, 422, "query parameter 'size'"),
        ({"ra": 360, "dec": 0}, 422, "query parameter 'ra'"),
        ({"ra": 1, "dec": -91}, 422, "query parameter 'dec'"),
        ({"ra": 1}, 422, "query parameter 'dec'"),
        ({"ra": 107.27, "dec": -70.0, "wait": -1}, 422, "query parameter 'wait'"),
        ({"ra": 107.27, "dec": -70.0, "format": "png"}, 422, "query parameter 'format'"),
    ],
)
async def test_bad_cutout_requests_are_problems(client, mast, params, status, words):
    response = await client.get("/cutout", params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]
    assert mast.count(endpoint="tesscut.astrocut") == 0


async def test_tic_nobody_knows_is_404(client):
    response = await client.get("/tic/999999999/cutout")
    assert response.status_code == 404
    assert "neither in ExoMAST's DV data nor in the TESS Input Catalog" in response.json()["detail"]


async def test_half_a_position_is_422(client):
    response = await client.get(WEIRD_CUTOUT, params={"ra": 10})
    assert response.status_code == 422
    assert "both ra and dec" in response.json()["detail"]


async def test_transient_503_is_retried(client, mast):
    mast.set_fault(ASTROCUT, status=503, times=1)
    response = await client.get("/cutout", params={"ra": 107.27, "dec": -70.0, "size": 5, "sector": 1})
    assert response.status_code == 200
    assert mast.count(endpoint="tesscut.astrocut") == 2


@pytest.mark.parametrize(("status", "words"), [(503, "TESScut is overloaded"), (504, "gateway timed out")])
async def test_persistent_503_504_become_clear_problems_and_nothing_is_cached(make_client, mast, status, words):
    mast.set_fault(ASTROCUT, status=status)
    async with make_client(tesscut_max_attempts=3) as client:
        failed = await client.get("/cutout", params={"ra": 107.27, "dec": -70.0, "size": 5, "sector": 1})
        assert failed.status_code == status
        assert words in failed.json()["detail"]
        assert int(failed.headers["retry-after"]) > 0
        assert mast.count(endpoint="tesscut.astrocut") == 3
        mast.clear_faults()
        recovered = await client.get("/cutout", params={"ra": 107.27, "dec": -70.0, "size": 5, "sector": 1})
        assert recovered.status_code == 200 and recovered.headers["x-cache"] == "MISS"


async def test_failed_job_shows_its_problem_and_the_next_request_starts_afresh(make_client, mast):
    mast.set_fault(ASTROCUT, status=500, delay_s=0.3)
    async with make_client() as client:
        accepted = await client.get("/cutout", params={"ra": 107.27, "dec": -70.0, "size": 5, "sector": 1, "wait": 0})
        job = (await poll_job(client, accepted)).json()
        assert job["status"] == "failed"
        assert job["problem"]["status"] == 502 and "TESScut answered HTTP 500" in job["problem"]["detail"]
        assert job["result_url"] is None
        mast.clear_faults()
        fresh = await client.get("/cutout", params={"ra": 107.27, "dec": -70.0, "size": 5, "sector": 1, "wait": 0})
        assert fresh.status_code == 202
        assert fresh.json()["id"] != job["id"]


async def test_unknown_and_malformed_job_ids(client):
    missing = await client.get("/jobs/" + "0" * 32)
    assert missing.status_code == 404
    assert (await client.get("/jobs/nope")).status_code == 422


@pytest.mark.slow
async def test_the_moving_source_is_in_the_pixels(client):
    """The emulator's solar-system object crosses near the target around BTJD 1334.45 (the DV dip)."""
    response = await client.get(WEIRD_CUTOUT, params={"sector": 1, "size": 50})
    with fits.open(io.BytesIO(response.content)) as hdus:
        time = hdus["PIXELS"].data["TIME"]
        flux = hdus["PIXELS"].data["FLUX"]
    median_frame = np.nanmedian(flux, axis=0)
    during = np.argmin(np.abs(time - 1334.45))
    before = np.argmin(np.abs(time - 1330.0))
    excess_during = np.nanmax(np.abs(flux[during] - median_frame)[20:30, 20:30])
    excess_before = np.nanmax(np.abs(flux[before] - median_frame)[20:30, 20:30])
    assert excess_during > 3 * excess_before


async def test_two_ccds_in_one_sector_serve_the_one_with_the_target(client):
    """(330.944, -30.9879) sits 2 px from the edge of camera 1 CCD 3; a 25-px cutout also reaches CCD 2."""
    params = {"ra": 330.944, "dec": -30.9879, "size": 25, "sector": 1}
    response = await client.get("/cutout", params=params)
    assert response.status_code == 200
    note = response.headers["x-cutout-note"]
    assert "contains the target" in note and "tess-s0001-1-2" in note
    with fits.open(io.BytesIO(response.content)) as hdus:
        assert (hdus[0].header["CAMERA"], hdus[0].header["CCD"]) == (1, 3)
        assert hdus["APERTURE"].data[12, 12] == 1
    summary = (await client.get("/cutout", params={**params, "format": "json"})).json()
    assert (summary["camera"], summary["ccd"]) == (1, 3)
    assert summary["note"] == note
