"""FFI light curves, their plots and events through HTTP, against the emulator's synthetic FFI pixels.

The emulator's FFIs (tests/fake_mast/scene.py) hold stars of known flux, a sky and noise, and one moving source
that passes 2.5 px from TIC 214568914 at BTJD 1334.45 in sector 1. TIC 214568914's DV dip is in its DV data only:
the pixels hold no dip there, so nothing here expects one. TIC 206462606 (Tmag 9.76, about 18,700 e-/s in the
emulator) has no TCE at all.
"""

import io
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from service.science.photometry import quality_names
from tests.conftest import WEIRD_TIC
from tests.polling import poll_job

pytestmark = pytest.mark.anyio

NO_TCE_TIC = 206462606
NO_TCE_FLUX_E_PER_S = 15000 * 10 ** (-0.4 * (9.76 - 10))  # the emulator's flux for its Tmag
COLUMNS = ["TIME", "FLUX", "FLUX_ERR", "BACKGROUND", "CENTROID_COL", "CENTROID_ROW", "QUALITY"]
ASTROCUT = "/tesscut/api/v0.1/astrocut"
LIGHTCURVE = f"/tic/{NO_TCE_TIC}/ffi-lightcurve"


async def test_a_tic_without_tces_gets_an_ffi_light_curve(client):
    assert (await client.get(f"/tic/{NO_TCE_TIC}/tces")).status_code == 404  # no TCE, no DV light curve

    response = await client.get(LIGHTCURVE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["vary"] == "Accept"
    body = response.json()
    assert (body["tic_id"], body["sector"], body["size_px"], body["camera"], body["ccd"]) == (NO_TCE_TIC, 1, 50, 1, 3)
    assert list(body["columns"]) == COLUMNS == list(body["units"]) == list(body["descriptions"])
    assert body["n_rows"] == 1282
    assert {len(values) for values in body["columns"].values()} == {1282}
    assert body["units"]["FLUX"] == "e-/s" and body["units"]["QUALITY"] is None
    assert body["datatypes"]["QUALITY"] == "int" and body["datatypes"]["FLUX"] == "real"

    # The aperture is returned, holds the star's pixel, and says how it was chosen.
    star = body["target_pixel"]
    pixels = body["aperture_pixels"]
    assert [round(star["x"]), round(star["y"])] in pixels
    assert body["aperture"]["method"] == "threshold" and body["aperture"]["n_pixels"] == len(pixels)
    assert body["background"]["n_pixels"] > 100 and body["background"]["description"]
    assert body["quality_bits"] == {"32": "momentum dump", "2048": "stray light"}

    # The photometry measures the star the emulator put there, with errors that describe its scatter.
    flux = np.array(body["columns"]["FLUX"], dtype=float)
    assert np.median(flux) == pytest.approx(NO_TCE_FLUX_E_PER_S, rel=0.02)
    assert np.std(flux) == pytest.approx(np.median(body["columns"]["FLUX_ERR"]), rel=0.25)
    assert np.median(body["columns"]["CENTROID_COL"]) == pytest.approx(star["x"], abs=0.1)
    quality = np.array(body["columns"]["QUALITY"])
    assert set(np.unique(quality)) == {0, 32, 2048}


async def test_csv_and_fits_carry_the_same_light_curve(client):
    body = (await client.get(LIGHTCURVE, params={"format": "json"})).json()

    csv = await client.get(LIGHTCURVE, params={"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert "vary" not in csv.headers  # format= chose it, not Accept
    assert csv.headers["content-disposition"] == 'attachment; filename="tic206462606_s0001_50px_ffi_lc.csv"'
    lines = csv.text.splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 1 + 1282

    negotiated = await client.get(LIGHTCURVE, headers={"Accept": "application/fits"})
    assert negotiated.headers["content-type"] == "application/fits" and negotiated.headers["vary"] == "Accept"
    with fits.open(io.BytesIO(negotiated.content)) as hdus:
        assert [hdu.name for hdu in hdus] == ["PRIMARY", "LIGHTCURVE", "APERTURE"]
        assert hdus[0].header["TICID"] == NO_TCE_TIC and hdus[0].header["SECTOR"] == 1
        table = hdus["LIGHTCURVE"]
        assert table.columns.names == COLUMNS
        assert table.columns["TIME"].unit == "BJD - 2457000, days" and table.columns["FLUX"].unit == "e-/s"
        assert table.header["BJDREFI"] == 2457000 and table.header["NPIXSAP"] == body["aperture"]["n_pixels"]
        np.testing.assert_array_equal(table.data["FLUX"], np.array(body["columns"]["FLUX"], dtype=float))
        aperture = hdus["APERTURE"].data
        assert sorted([int(x), int(y)] for y, x in zip(*np.nonzero(aperture & 2), strict=True)) == sorted(
            body["aperture_pixels"]
        )
        assert hdus["APERTURE"].header["CTYPE1"] == "RA---TAN"  # the cutout's WCS came along
        assert all(hdu.verify_checksum() == 1 for hdu in hdus)


@pytest.mark.slow
async def test_lightkurve_reads_the_fits_as_a_tess_light_curve(client, tmp_path):
    lk = pytest.importorskip("lightkurve", reason="lightkurve is not installed (pip install lightkurve)")
    response = await client.get(LIGHTCURVE, params={"format": "fits"})
    path = tmp_path / "lc.fits"
    path.write_bytes(response.content)
    lc = lk.read(str(path), quality_bitmask="none")
    assert type(lc).__name__ == "TessLightCurve"
    assert len(lc) == 1282 and lc.meta["TICID"] == NO_TCE_TIC
    assert lc.time.format == "btjd" and lc.flux.unit == "electron / s"
    assert np.nanmedian(lc.flux.value) == pytest.approx(NO_TCE_FLUX_E_PER_S, rel=0.02)
    # With lightkurve's default quality mask, the 15 momentum dumps are dropped, as from a SPOC light curve.
    assert len(lk.read(str(path))) == 1282 - 15


async def test_the_light_curve_is_cached_with_etags(client, mast):
    first = await client.get(LIGHTCURVE, params={"format": "csv"})
    again = await client.get(LIGHTCURVE, params={"format": "csv"})
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    not_modified = await client.get(
        LIGHTCURVE, params={"format": "csv"}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert not_modified.status_code == 304
    assert mast.count(endpoint="tesscut.astrocut") == 1  # one cutout, made into several products


async def test_the_plot_is_a_png_of_the_light_curve(client):
    response = await client.get(f"/tic/{WEIRD_TIC}/ffi-lightcurve.png", params={"sector": 1, "width": 800})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (800, 500)
    pixels = np.asarray(image.convert("RGB"), dtype=int)
    points = (np.abs(pixels - (0x1F, 0x3B, 0x73)).sum(axis=2) < 60).sum()  # the plot's point colour
    assert points > 500, "the light curve's points are drawn"

    zoomed = await client.get(
        f"/tic/{WEIRD_TIC}/ffi-lightcurve.png", params={"start": 1334, "end": 1335, "highlight": "1334.3,1334.6"}
    )
    assert zoomed.status_code == 200  # the window alone chose sector 1


async def test_events_of_a_tic_without_tces_carry_quality(client):
    response = await client.get(f"/tic/{NO_TCE_TIC}/ffi-lightcurve/events", params={"min_snr": 3, "max_events": 50})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tic_id"], body["sector"], body["source"], body["tce_id"]) == (NO_TCE_TIC, 1, "ffi", None)
    assert (body["min_snr"], body["max_events"], body["kind"]) == (3.0, 50, None)
    assert body["n_points"] == 1282 - 15  # the momentum dumps are not searched
    events = body["events"]
    assert events, "at 3 sigma, noise alone gives events"
    assert [e["snr"] for e in events] == sorted((e["snr"] for e in events), reverse=True)
    for event in events:
        assert event["snr"] >= 3 and event["in_model_transit"] is None
        assert event["quality_flags"] == quality_names(event["quality"])
        assert event["links"]["movie"].startswith(f"/tic/{NO_TCE_TIC}/movie?sector=1&start=")
        assert event["links"]["plot"].startswith(f"/tic/{NO_TCE_TIC}/ffi-lightcurve.png?sector=1&start=")
        shaded = parse_qs(urlsplit(event["links"]["plot"]).query)["highlight"][0].split(",")
        assert [float(x) for x in shaded] == pytest.approx([event["start_btjd"], event["end_btjd"]], abs=1e-4)
    # A day-long window holds a momentum dump (every 2.5 days), which its quality says even though unsearched.
    assert any("momentum dump" in e["quality_flags"] for e in events if e["duration_hours"] >= 16)

    # By default (7.1 sigma) this quiet star has none.
    assert (await client.get(f"/tic/{NO_TCE_TIC}/ffi-lightcurve/events")).json()["events"] == []


async def test_the_moving_source_is_a_bump_in_the_ffi_light_curve(client):
    # Not TIC 214568914's DV dip (not in the pixels) but what is: the moving source crossing the aperture.
    body = (await client.get(f"/tic/{WEIRD_TIC}/ffi-lightcurve/events", params={"sector": 1})).json()
    strongest = body["events"][0]
    assert strongest["kind"] == "bump" and strongest["t0_btjd"] == pytest.approx(1334.45, abs=0.1)
    movie = strongest["links"]["movie"]
    assert (await client.get(movie)).status_code == 200  # the link serves the movie of that window
    dips = (await client.get(f"/tic/{WEIRD_TIC}/ffi-lightcurve/events", params={"sector": 1, "kind": "dip"})).json()
    assert dips["kind"] == "dip" and all(e["kind"] == "dip" for e in dips["events"])


async def test_a_position_gets_a_light_curve_and_events_too(client):
    at = {"ra": 330.9041, "dec": -19.971, "size": 20}
    table = await client.get("/ffi-lightcurve", params=at)
    assert table.status_code == 200 and table.json()["tic_id"] is None and table.json()["size_px"] == 20
    events = (await client.get("/ffi-lightcurve/events", params={**at, "min_snr": 3})).json()
    assert events["tic_id"] is None
    assert events["events"][0]["links"]["movie"].startswith("/movie?ra=330.9041&dec=-19.971&sector=1&size=20&")
    assert (await client.get("/ffi-lightcurve.png", params=at)).status_code == 200


@pytest.mark.slow
async def test_cold_light_curve_without_waiting_gets_a_job(client, mast):
    mast.set_fault(ASTROCUT, delay_s=0.5)
    accepted = await client.get(LIGHTCURVE, params={"format": "csv", "wait": 0})
    assert accepted.status_code == 202
    assert accepted.json()["then"] == f"{LIGHTCURVE}?format=csv"
    job = (await poll_job(client, accepted)).json()
    assert job["status"] == "done"
    result = await client.get(accepted.json()["then"])
    assert result.status_code == 200 and result.headers["x-cache"] == "HIT"
    assert result.text.startswith("TIME,FLUX,")


@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        ("/ffi-lightcurve/events", {"min_snr": 2}, "query parameter 'min_snr'"),
        ("/ffi-lightcurve/events", {"min_snr": 1001}, "query parameter 'min_snr'"),
        ("/ffi-lightcurve/events", {"min_snr": "nan"}, "query parameter 'min_snr'"),
        ("/ffi-lightcurve/events", {"max_events": 0}, "query parameter 'max_events'"),
        ("/ffi-lightcurve/events", {"max_events": 51}, "query parameter 'max_events'"),
        ("/ffi-lightcurve/events", {"kind": "spike"}, "query parameter 'kind'"),
        ("/ffi-lightcurve", {"size": 101}, "query parameter 'size'"),
        ("/ffi-lightcurve", {"size": 4}, "size=4 leaves no pixels around the star"),
        ("/ffi-lightcurve", {"format": "xml"}, "query parameter 'format'"),
        ("/ffi-lightcurve.png", {"start": 1335, "end": 1334}, "start (1335.0) is after end"),
        ("/ffi-lightcurve.png", {"highlight": "1335,1334"}, "highlight '1335,1334'"),
        ("/ffi-lightcurve.png", {"highlight": "soon"}, "query parameter 'highlight'"),
        ("/ffi-lightcurve.png", {"start": 1300, "end": 1301, "sector": 1}, "holds no cadence of sector 1"),
    ],
)
async def test_bad_parameters_are_422_problems(client, path, params, words):
    response = await client.get(f"/tic/{WEIRD_TIC}{path}", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


async def test_an_accept_header_allowing_no_format_is_406(client):
    response = await client.get(LIGHTCURVE, headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"
