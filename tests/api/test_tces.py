"""TCE lists and summaries through HTTP, against the emulator."""

import pytest

from tests.conftest import WASP18_TIC, WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio


async def test_padded_tic_lists_the_weird_tce(client):
    response = await client.get("/tic/00214568914/tces")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "tic_id": WEIRD_TIC,
        "tces": [
            {
                "id": WEIRD_TCE,
                "sectors": "s0001-s0001",
                "first_sector": 1,
                "last_sector": 1,
                "tce": "TCE_1",
                "number": 1,
            }
        ],
    }


async def test_multi_sector_list_is_sorted_by_sector_range_then_number(client, mast):
    upstream = mast_tce_order(mast)
    response = await client.get(f"/tic/{WASP18_TIC}/tces")
    ids = [tce["id"] for tce in response.json()["tces"]]
    assert sorted(upstream) == sorted(ids)
    assert ids != upstream, "the emulator lists them unsorted, so sorting must have happened"
    keys = [(t["first_sector"], t["last_sector"], t["number"]) for t in response.json()["tces"]]
    assert keys == sorted(keys)


def mast_tce_order(mast):
    import httpx

    return httpx.get(f"{mast.exomast_url}dvdata/tess/{WASP18_TIC}/tces/").json()["TCE"]


async def test_summary_normalises_the_dv_headers(client):
    response = await client.get(f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}")
    assert response.status_code == 200
    body = response.json()
    summary = body["summary"]
    assert summary["period_days"] == pytest.approx(11.6186)
    assert summary["epoch_btjd"] == pytest.approx(1334.45)
    assert summary["depth_ppm"] == pytest.approx(24447.6, rel=1e-3)
    assert summary["duration_hours"] == pytest.approx(12.6, abs=0.05)
    assert summary["max_ses"] == pytest.approx(68.27, abs=0.01)
    assert summary["ra_deg"] == pytest.approx(340.8004)
    assert summary["dec_deg"] == pytest.approx(-36.3439)
    assert summary["tessmag"] == pytest.approx(15.34)
    assert summary["teff_k"] == pytest.approx(31000)
    assert body["dv_primary_header"]["OBJECT"] == "TIC 214568914"
    assert body["dv_data_header"]["TPERIOD"] == summary["period_days"]
    assert body["tce"]["id"] == WEIRD_TCE


async def test_short_tce_id_resolves_when_unambiguous(client):
    full = await client.get(f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}")
    short = await client.get(f"/tic/{WEIRD_TIC}/tces/TCE_1")
    assert short.status_code == 200
    assert short.json() == full.json()


async def test_ambiguous_short_tce_id_is_409_listing_candidates(client):
    response = await client.get(f"/tic/{WASP18_TIC}/tces/TCE_1")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem["candidates"]) == {
        "s0001-s0001:TCE_1",
        "s0001-s0003:TCE_1",
        "s0002-s0002:TCE_1",
        "s0003-s0003:TCE_1",
    }
    assert "s0001-s0003:TCE_1" in problem["detail"]


async def test_multi_sector_tce_by_full_id(client):
    response = await client.get(f"/tic/{WASP18_TIC}/tces/s0001-s0003:TCE_1")
    assert response.status_code == 200
    assert response.json()["summary"]["planet_radius_earth"] == pytest.approx(12.97984)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/tic/999999999/tces", 404, "TIC 999999999 has no TESS Data Validation results"),
        (f"/tic/{WEIRD_TIC}/tces/TCE_7", 404, "has no TCE_7"),
        (f"/tic/{WEIRD_TIC}/tces/s0002-s0002:TCE_1", 404, "has no TCE s0002-s0002:TCE_1"),
        ("/tic/abc/tces", 422, "tic_id"),
        ("/tic/123456789012/tces", 422, "tic_id"),
        (f"/tic/{WEIRD_TIC}/tces/planet", 422, "tce_id"),
        ("/no/such/route", 404, "no route"),
    ],
)
async def test_bad_input_gets_a_problem_document(client, path, status, words):
    response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    problem = response.json()
    assert problem["status"] == status
    assert problem["instance"] == path
    assert words in problem["detail"]
    assert problem["retryable"] is False
