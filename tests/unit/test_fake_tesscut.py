"""The emulator's TESScut v0.1 and TIC routes, over real HTTP on loopback, and unmodified astroquery against them."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from tests.fake_mast import FakeMast
from tests.fake_mast.footprints import TWO_CCD_POSITION
from tests.fake_mast.scene import mover_offset_px
from tests.polling import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_ZIP = REPO_ROOT / "tests" / "data" / "astrocut_107.27_-70.0_5x5.zip"
SECTOR = "/tesscut/api/v0.1/sector"
ASTROCUT = "/tesscut/api/v0.1/astrocut"
INVOKE = "/api/v0/invoke"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
WEIRD = (340.8004, -36.3439)
WASP126 = (63.37389, -69.226789)
PI_MEN = (84.2911879979852, -80.4691197969941)
NORTH = (10.0, 40.0)
NO_DATA = "Cutout Error: No FFIs found for input target. Cutout not performed."
PIXEL_COLUMNS = ("RAW_CNTS", "FLUX", "FLUX_ERR", "FLUX_BKG", "FLUX_BKG_ERR")
COLUMNS = [
    ("TIME", "D", "BJD - 2457000, days"), ("TIMECORR", "E", "d"), ("CADENCENO", "J", None),
    ("RAW_CNTS", "2500J", "count"), ("FLUX", "2500E", "e-/s"), ("FLUX_ERR", "2500E", "e-/s"),
    ("FLUX_BKG", "2500E", "e-/s"), ("FLUX_BKG_ERR", "2500E", "e-/s"), ("QUALITY", "J", None),
    ("POS_CORR1", "E", "pixel"), ("POS_CORR2", "E", "pixel"), ("FFI_FILE", "38A", "pixel"),
]  # fmt: skip
COLUMN_WCS_KEYWORDS = [
    "WCAX{c}", "1CTYP{c}", "2CTYP{c}", "1CRPX{c}", "2CRPX{c}", "1CRVL{c}", "2CRVL{c}", "1CUNI{c}", "1CDLT{c}",
    "2CDLT{c}", "11PC{c}", "12PC{c}", "21PC{c}", "22PC{c}", "WCSN{c}P", "WCAX{c}P", "1CTY{c}P", "2CTY{c}P",
    "1CRV{c}P", "2CRV{c}P", "1CRP{c}P", "2CRP{c}P", "1CDL{c}P", "2CDL{c}P",
]  # fmt: skip


@pytest.fixture(scope="module")
def private_mast() -> Iterator[FakeMast]:
    """An emulator of this module's own: these tests check the emulator itself, faults and counters included."""
    with FakeMast(host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_state(private_mast: FakeMast) -> None:
    private_mast.reset()


@pytest.fixture()
def mast_client(private_mast: FakeMast) -> Iterator[httpx.Client]:
    """A plain HTTP client of ``private_mast`` (the service is not involved)."""
    with httpx.Client(base_url=private_mast.url, timeout=30.0) as http_client:
        yield http_client


def open_members(payload: bytes) -> list[tuple[str, fits.HDUList]]:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return [(name, fits.open(io.BytesIO(archive.read(name)))) for name in archive.namelist()]


@pytest.fixture(scope="module")
def weird_zip(private_mast: FakeMast) -> bytes:
    """The tutorial's cutout: 50 x 50 px around TIC 214568914, sector 1 (GET, as download_cutouts sends it)."""
    params = {"ra": WEIRD[0], "dec": WEIRD[1], "x": 50, "y": 50, "units": "px", "sector": 1}
    response = httpx.get(private_mast.tesscut_url + "astrocut", params=params, timeout=30.0)
    assert response.status_code == 200
    return response.content


@pytest.fixture(scope="module")
def weird_tpf(weird_zip: bytes) -> fits.HDUList:
    ((_, hdul),) = open_members(weird_zip)
    return hdul


def centre_pixel_of(hdul: fits.HDUList, ra: float, dec: float) -> tuple[float, float]:
    x, y = WCS(hdul["APERTURE"].header).world_to_pixel(SkyCoord(ra, dec, unit="deg"))
    return float(x), float(y)


# --- sector -----------------------------------------------------------------------------------------------------


def test_sector_get_matches_the_recorded_pi_men_response(mast_client: httpx.Client) -> None:
    response = mast_client.get(SECTOR, params={"ra": PI_MEN[0], "dec": PI_MEN[1], "radius": "0m"})
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_CONTENT_TYPE
    expected = [(1, 4, 2), (4, 4, 3), (8, 4, 4), (11, 4, 1), (12, 3, 4), (13, 3, 3)]
    assert response.json() == {
        "results": [
            {"sectorName": f"tess-s{s:04d}-{c}-{d}", "sector": f"{s:04d}", "camera": str(c), "ccd": str(d)}
            for s, c, d in expected
        ]
    }


def test_sector_post_form_as_astroquery_sends_it(mast_client: httpx.Client) -> None:
    response = mast_client.post(
        SECTOR,
        content=f"ra={WEIRD[0]}&dec={WEIRD[1]}&radius=0.1&product=SPOC",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [{"sectorName": "tess-s0001-1-2", "sector": "0001", "camera": "1", "ccd": "2"}]
    }


@pytest.mark.parametrize(
    ("position", "sectors"),
    [
        ((107.27, -70.0), ["tess-s0001-4-3"]),
        (WASP126, [f"tess-s{s:04d}-4-{c}" for s, c in [(1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (6, 3), (7, 3)]]
         + [f"tess-s{s:04d}-4-{c}" for s, c in [(8, 3), (9, 4), (10, 4), (11, 4), (12, 1), (13, 1), (33, 3)]]),
        ((330.9041, -19.9710), ["tess-s0001-1-3"]),
        ((18.4189, -59.6598), ["tess-s0001-3-1", "tess-s0002-3-2"]),
        (TWO_CCD_POSITION, ["tess-s0001-1-3"]),
        (NORTH, []),
        ((0.0, 0.0), []),
        ((180.0, 0.0), []),
    ],
)  # fmt: skip
def test_sector_footprints(mast_client: httpx.Client, position: tuple[float, float], sectors: list[str]) -> None:
    response = mast_client.get(SECTOR, params={"ra": position[0], "dec": position[1]})
    assert response.status_code == 200
    assert [entry["sectorName"] for entry in response.json()["results"]] == sectors


@pytest.mark.parametrize(
    ("radius", "reaches_ccd_2"),
    [("0", False), ("0d", False), ("30s", False), ("2m", False), ("5m", True), ("15px", True), ("0.1", True)],
)
def test_sector_radius_units(mast_client: httpx.Client, radius: str, reaches_ccd_2: bool) -> None:
    response = mast_client.get(SECTOR, params={"ra": TWO_CCD_POSITION[0], "dec": TWO_CCD_POSITION[1], "radius": radius})
    assert response.status_code == 200
    names = [entry["sectorName"] for entry in response.json()["results"]]
    # The position is 10.8 px from CCD 2's first row (1 px = 21 arcsec).
    assert names == (["tess-s0001-1-2", "tess-s0001-1-3"] if reaches_ccd_2 else ["tess-s0001-1-3"])


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (SECTOR, {"ra": 1, "dec": 2, "radius": "5q"}),
        (SECTOR, {"ra": "abc", "dec": 2}),
        (SECTOR, {"dec": 2}),
        (SECTOR, {"ra": 1, "dec": 95}),
        (ASTROCUT, {"ra": WEIRD[0], "dec": WEIRD[1], "x": "five", "y": 5}),
        (ASTROCUT, {"ra": WEIRD[0], "dec": WEIRD[1], "sector": "one"}),
        (ASTROCUT, {"ra": WEIRD[0], "dec": WEIRD[1], "units": "furlongs"}),
        (ASTROCUT, {"ra": WEIRD[0], "dec": "nan"}),
    ],
)
def test_malformed_parameters_are_400(mast_client: httpx.Client, path: str, params: dict[str, object]) -> None:
    response = mast_client.get(path, params=params)
    assert response.status_code == 400
    assert response.json()["msg"]


# --- astrocut ---------------------------------------------------------------------------------------------------


def test_astrocut_get_and_post_return_the_same_single_tpf(mast_client: httpx.Client, weird_zip: bytes) -> None:
    response = mast_client.post(
        ASTROCUT,
        data={"x": 50, "y": 50, "units": "px", "sector": 1, "ra": WEIRD[0], "dec": WEIRD[1]},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert int(response.headers["content-length"]) == len(response.content) == len(weird_zip)
    assert response.content == weird_zip
    with zipfile.ZipFile(io.BytesIO(weird_zip)) as archive:
        assert archive.namelist() == ["tess-s0001-1-2_340.8004000_-36.3439000_50-x-50_astrocut.fits"]
        assert archive.infolist()[0].compress_type == zipfile.ZIP_DEFLATED


def test_tpf_layout(weird_tpf: fits.HDUList) -> None:
    weird_tpf.verify("exception")
    assert [hdu.name for hdu in weird_tpf] == ["PRIMARY", "PIXELS", "APERTURE"]
    primary = weird_tpf[0].header
    assert weird_tpf[0].data is None
    assert (primary["CREATOR"], primary["FFI_TYPE"], primary["ORIGIN"]) == ("astrocut", "SPOC", "STScI/MAST")
    assert (primary["SECTOR"], primary["CAMERA"], primary["CCD"]) == (1, 1, 2)
    assert (primary["RA_OBJ"], primary["DEC_OBJ"]) == WEIRD
    assert (primary["TIMEREF"], primary["TASSIGN"], primary["TIMESYS"]) == ("SOLARSYSTEM", "SPACECRAFT", "TDB")
    assert (primary["BJDREFI"], primary["BJDREFF"], primary["TIMEUNIT"]) == (2457000, 0.0, "d")
    assert primary["TELAPSE"] == pytest.approx(primary["TSTOP"] - primary["TSTART"])
    assert primary["DATE-OBS"].startswith("2018-07-25T19:")
    assert (primary["OBJECT"], primary["TESSMAG"], primary["TEFF"], primary["PXTABLE"]) == ("", 0.0, 0.0, 0)
    assert primary["TICID"] is None  # an undefined value, as astrocut writes it
    assert primary.cards["TICID"].image.startswith("TICID   =  /")
    for keyword in ("PROCVER", "TSTART", "TSTOP", "DATE-END", "DATA_REL", "TELESCOP", "INSTRUME", "RADESYS", "EQUINOX"):
        assert keyword in primary

    pixels = weird_tpf["PIXELS"]
    columns = pixels.columns
    assert [(c.name, c.format, c.unit) for c in columns] == COLUMNS
    for number in range(4, 4 + len(PIXEL_COLUMNS)):
        assert pixels.header[f"TDIM{number}"] == "(50, 50)"
        for template in COLUMN_WCS_KEYWORDS:
            assert template.format(c=number) in pixels.header
        assert (pixels.header[f"1CTYP{number}"], pixels.header[f"2CTYP{number}"]) == ("RA---TAN", "DEC--TAN")
        assert (pixels.header[f"1CTY{number}P"], pixels.header[f"2CTY{number}P"]) == ("RAWX", "RAWY")
    assert pixels.header["TNULL4"] == -1
    assert pixels.header["WCS_FFI"].startswith("tess2018")
    assert pixels.header["INHERIT"] is True
    data = pixels.data
    assert len(data) == 1282
    assert data["FLUX"].shape == (1282, 50, 50)
    assert (data["RAW_CNTS"] == -1).all()
    assert (data["FLUX_BKG"] == 0).all() and (data["FLUX_BKG_ERR"] == 0).all()
    assert (data["CADENCENO"] == 0).all() and (data["POS_CORR1"] == 0).all()
    assert np.isfinite(data["FLUX"]).all() and (data["FLUX_ERR"] > 0).all()
    assert 100 < np.median(data["FLUX"]) < 200  # calibrated, not background-subtracted
    time_btjd = data["TIME"]
    assert time_btjd[0] < 1325.4 and time_btjd[-1] > 1353.1 and (np.diff(time_btjd) > 0).all()
    assert ((time_btjd > 1334.0) & (time_btjd < 1335.0)).sum() == 48
    assert np.diff(time_btjd).max() > 1.0  # the mid-sector downlink gap
    assert 0.004 < np.abs(data["TIMECORR"]).max() < 0.006
    quality = data["QUALITY"]
    assert 10 <= np.count_nonzero(quality) <= 40 and np.count_nonzero(quality & 32) == 15
    assert re.fullmatch(r"tess2018206\d{6}-s0001-1-2-0120-s_ffi", data["FFI_FILE"][0])

    aperture = weird_tpf["APERTURE"]
    assert aperture.data.dtype == np.dtype(">i4") and aperture.data.shape == (50, 50)
    assert (aperture.data == 1).all()
    assert aperture.header["INHERIT"] is True and aperture.header["CTYPE1"] == "RA---TAN"
    assert (aperture.header["CTYPE1P"], aperture.header["CRVAL1P"]) == ("RAWX", pixels.header["1CRV4P"])
    x, y = centre_pixel_of(weird_tpf, *WEIRD)
    assert abs(x - 25) <= 0.5 and abs(y - 25) <= 0.5
    # The column WCS is the APERTURE WCS.
    assert pixels.header["1CRVL5"] == aperture.header["CRVAL1"] and pixels.header["22PC5"] == aperture.header["PC2_2"]
    pixel_scale_arcsec = math.sqrt(abs(np.linalg.det(WCS(aperture.header).pixel_scale_matrix))) * 3600
    assert 19.5 < pixel_scale_arcsec < 21.5


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("sector", [1, None])
def test_the_real_2018_zip_is_served_byte_for_byte(mast_client: httpx.Client, method: str, sector: int | None) -> None:
    params: dict[str, object] = {"x": 5, "y": 5, "units": "px", "ra": 107.27, "dec": -70.0}
    if sector is not None:
        params["sector"] = sector
    if method == "GET":
        response = mast_client.get(ASTROCUT, params=params)
    else:
        response = mast_client.post(ASTROCUT, data=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(REAL_ZIP.read_bytes()).hexdigest()


def test_other_sizes_at_the_real_sample_position_are_generated(mast_client: httpx.Client) -> None:
    response = mast_client.get(ASTROCUT, params={"ra": 107.27, "dec": -70.0, "x": 7, "y": 5})
    ((name, hdul),) = open_members(response.content)
    assert name == "tess-s0001-4-3_107.2700000_-70.0000000_5-x-7_astrocut.fits"
    assert hdul["PIXELS"].data["FLUX"].shape == (1282, 5, 7)
    assert hdul["APERTURE"].data.shape == (5, 7)


@pytest.mark.parametrize("params", [{"ra": NORTH[0], "dec": NORTH[1]}, {"ra": WEIRD[0], "dec": WEIRD[1], "sector": 2}])
def test_no_ffis_is_a_200_json_message(mast_client: httpx.Client, params: dict[str, object]) -> None:
    response = mast_client.get(ASTROCUT, params=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_CONTENT_TYPE
    assert response.json() == {"msg": NO_DATA}


@pytest.mark.parametrize(
    "size", [{"x": 101, "y": 100}, {"x": 10001, "y": 1}, {"x": 0.6, "y": 0.6, "units": "d"}, {"x": 101, "y": 101}]
)
def test_more_than_10000_pixels_is_400(mast_client: httpx.Client, size: dict[str, object]) -> None:
    response = mast_client.get(ASTROCUT, params={"ra": WEIRD[0], "dec": WEIRD[1], "sector": 1, **size})
    assert response.status_code == 400
    assert response.headers["content-type"] == JSON_CONTENT_TYPE
    assert "10,000" in response.json()["msg"]


def test_angular_sizes_are_rounded_up_to_pixels(mast_client: httpx.Client) -> None:
    # What astroquery sends for size=[2, 3] * u.arcmin: x = 3 arcmin, y = 2 arcmin, in degrees.
    query = f"x=0.05&y=0.03333333333333333&units=d&sector=1&ra={WEIRD[0]}&dec={WEIRD[1]}"
    response = mast_client.get(f"{ASTROCUT}?{query}")
    ((name, hdul),) = open_members(response.content)
    assert name.endswith("_6-x-9_astrocut.fits")
    assert hdul["PIXELS"].data["FLUX"].shape == (1282, 6, 9)


def test_a_position_near_a_ccd_edge_returns_two_tpfs(mast_client: httpx.Client) -> None:
    ra, dec = TWO_CCD_POSITION
    response = mast_client.get(ASTROCUT, params={"ra": ra, "dec": dec, "x": 25, "y": 25, "sector": 1})
    members = open_members(response.content)
    assert [name for name, _ in members] == [
        "tess-s0001-1-2_330.9440000_-30.9879000_25-x-25_astrocut.fits",
        "tess-s0001-1-3_330.9440000_-30.9879000_25-x-25_astrocut.fits",
    ]
    (_, off_chip), (_, on_chip) = members
    for hdul in (off_chip, on_chip):
        hdul.verify("exception")
        x, y = centre_pixel_of(hdul, ra, dec)
        assert abs(x - 12) <= 0.5 and abs(y - 12) <= 0.5
    assert on_chip["APERTURE"].data[12, 12] == 1 and off_chip["APERTURE"].data[12, 12] == 0
    assert 0 < off_chip["APERTURE"].data.sum() < on_chip["APERTURE"].data.sum() < 625
    flux = off_chip["PIXELS"].data["FLUX"][0]
    assert np.isnan(flux[off_chip["APERTURE"].data == 0]).all()
    assert np.isfinite(flux[off_chip["APERTURE"].data == 1]).all()
    # Narrower cutouts stay on one CCD.
    narrow = mast_client.get(ASTROCUT, params={"ra": ra, "dec": dec, "x": 15, "y": 15, "sector": 1})
    assert [name[:14] for name, _ in open_members(narrow.content)] == ["tess-s0001-1-3"]


def test_the_moving_source_follows_its_documented_track(weird_tpf: fits.HDUList) -> None:
    data = weird_tpf["PIXELS"].data
    time_btjd, flux, flux_err = data["TIME"], data["FLUX"], data["FLUX_ERR"]
    static = np.median(flux, axis=0)
    target_x, target_y = centre_pixel_of(weird_tpf, *WEIRD)
    yy, xx = np.mgrid[:50, :50]
    for when in (1334.0, 1334.45, 1334.9):
        k = int(np.argmin(np.abs(time_btjd - when)))
        excess = flux[k] - static
        snr = (excess - np.median(excess)) / flux_err[k]
        snr[np.hypot(xx - target_x, yy - target_y) < 1.5] = -np.inf
        y, x = np.unravel_index(np.argmax(snr), snr.shape)
        d_col, d_row = mover_offset_px(float(time_btjd[k]))
        assert math.hypot(x - (target_x + d_col), y - (target_y + d_row)) < 1.2, when
        assert snr[y, x] > 20
    # Before 1333.9 and after 1335.0 nothing moves: no pixel stands out.
    for when in (1333.5, 1335.5):
        k = int(np.argmin(np.abs(time_btjd - when)))
        excess = flux[k] - static
        assert ((excess - np.median(excess)) / flux_err[k]).max() < 8


def test_generation_is_deterministic_and_overlapping_cutouts_agree(
    private_mast: FakeMast, mast_client: httpx.Client
) -> None:
    params = {"ra": 330.9041, "dec": -19.9710, "sector": 1}
    small = mast_client.get(ASTROCUT, params={**params, "x": 9, "y": 9}).content
    large = mast_client.get(ASTROCUT, params={**params, "x": 11, "y": 11}).content
    builds = private_mast.cutout_cache_stats()["builds"]
    private_mast.clear_cutout_cache()
    assert private_mast.cutout_cache_stats()["entries"] == 0
    assert mast_client.get(ASTROCUT, params={**params, "x": 9, "y": 9}).content == small
    assert private_mast.cutout_cache_stats()["builds"] == builds + 1
    ((_, small_tpf),) = open_members(small)
    ((_, large_tpf),) = open_members(large)
    assert large_tpf["PIXELS"].header["1CRV5P"] + 1 == small_tpf["PIXELS"].header["1CRV5P"]
    assert large_tpf["PIXELS"].header["2CRV5P"] + 1 == small_tpf["PIXELS"].header["2CRV5P"]
    for column in ("FLUX", "FLUX_ERR", "TIME", "QUALITY"):
        small_values, large_values = small_tpf["PIXELS"].data[column], large_tpf["PIXELS"].data[column]
        if column.startswith("FLUX"):
            large_values = large_values[:, 1:10, 1:10]
        np.testing.assert_array_equal(small_values, large_values)


def test_sector_33_has_3495_ten_minute_frames(mast_client: httpx.Client) -> None:
    response = mast_client.get(ASTROCUT, params={"ra": WASP126[0], "dec": WASP126[1], "x": 3, "y": 3, "sector": 33})
    ((name, hdul),) = open_members(response.content)
    assert name.startswith("tess-s0033-4-3_")
    time_btjd = hdul["PIXELS"].data["TIME"]
    assert len(time_btjd) == 3495
    assert np.median(np.diff(time_btjd)) == pytest.approx(10 / 1440, rel=1e-3)
    assert hdul[0].header["SECTOR"] == 33


def test_moving_targets_are_not_emulated(mast_client: httpx.Client) -> None:
    for path in ("moving_target/sector", "moving_target/astrocut"):
        response = mast_client.post(f"/tesscut/api/v0.1/{path}", data={"obj_id": "Eleonora"})
        assert response.status_code == 501
        assert response.json() == {"msg": "moving targets are not emulated"}


def test_counters_name_the_tesscut_endpoints(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    mast_client.get(SECTOR, params={"ra": 1, "dec": 2})
    mast_client.post(SECTOR, data={"ra": 1, "dec": 2})
    mast_client.get(ASTROCUT, params={"ra": NORTH[0], "dec": NORTH[1]})
    mast_client.get("/tesscut/api/v0.1/moving_target/sector", params={"obj_id": "x"})
    mast_client.get("/tesscut/api/v0.1/nope")
    assert private_mast.count(endpoint="tesscut.sector") == 2
    assert private_mast.count(endpoint="tesscut.astrocut") == 1
    assert private_mast.count(endpoint="tesscut.other") == 2
    assert private_mast.count(path=SECTOR) == 2


# --- faults, limits, throttling ---------------------------------------------------------------------------------


def test_faults_apply_to_tesscut_routes(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault("/tesscut/*/astrocut", status=504, times=1)
    response = mast_client.get(ASTROCUT, params={"ra": WEIRD[0], "dec": WEIRD[1]})
    assert response.status_code == 504
    assert b"504 Gateway Time-out" in response.content
    private_mast.set_fault(ASTROCUT, body="truncate", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        mast_client.get(ASTROCUT, params={"ra": 107.27, "dec": -70.0})


def test_more_than_10_simultaneous_requests_get_503(private_mast: FakeMast) -> None:
    private_mast.set_fault(SECTOR, delay_s=0.6)

    def ask(_: int) -> httpx.Response:
        with httpx.Client(timeout=10.0) as own_client:
            return own_client.get(private_mast.tesscut_url + "sector", params={"ra": WEIRD[0], "dec": WEIRD[1]})

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(ask, range(12)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 10 + [503] * 2
    rejected = next(response for response in responses if response.status_code == 503)
    assert b"503 Service Temporarily Unavailable" in rejected.content
    assert rejected.headers["content-type"] == "text/html"
    # Rejected requests count while they are answered, so the mark passes 10 exactly when a client overdid it.
    assert private_mast.tesscut_in_flight_max() >= 11
    # A request counts out after its last byte is written, which can be just after the client has read it.
    wait_until(lambda: private_mast.tesscut_in_flight() == 0, 5, what="the last request to count out")
    assert private_mast.tesscut_in_flight() == 0
    private_mast.reset()
    assert private_mast.tesscut_in_flight_max() == 0
    assert httpx.get(private_mast.url + "/__fake__/tesscut/in-flight").json() == {"current": 0, "max": 0, "limit": 10}


def test_throttle_sends_the_body_at_the_given_rate(private_mast: FakeMast) -> None:
    private_mast.set_fault(ASTROCUT, throttle_bytes_per_s=1_000_000)
    arrivals: list[tuple[float, int]] = []
    started = time.monotonic()
    with httpx.stream(
        "GET", private_mast.tesscut_url + "astrocut", params={"ra": 107.27, "dec": -70.0}, timeout=10
    ) as reply:
        assert int(reply.headers["content-length"]) == REAL_ZIP.stat().st_size
        body = b""
        for chunk in reply.iter_bytes():
            body += chunk
            arrivals.append((time.monotonic() - started, len(body)))
    assert body == REAL_ZIP.read_bytes()
    assert 0.2 < arrivals[-1][0] < 2.0  # 260,927 B at 1 MB/s
    halfway = next(t for t, size in arrivals if size >= len(body) // 2)
    assert halfway < arrivals[-1][0] - 0.08  # the body arrives progressively, not at once
    assert private_mast.faults()[0]["throttle_bytes_per_s"] == 1_000_000


def test_throttle_is_validated(private_mast: FakeMast) -> None:
    for bad in (0, -1.0, True, "fast"):
        with pytest.raises(ValueError):
            private_mast.set_fault("*", throttle_bytes_per_s=bad)  # type: ignore[arg-type]
    response = httpx.post(private_mast.url + "/__fake__/faults", json={"path": "/x", "throttle_bytes_per_s": 5e5})
    assert response.status_code == 201 and response.json()["fault"]["throttle_bytes_per_s"] == 5e5


def test_the_cutout_cache_is_removed_on_stop() -> None:
    with FakeMast() as own:
        response = httpx.get(own.tesscut_url + "astrocut", params={"ra": 330.9041, "dec": -19.9710, "x": 3, "y": 3})
        assert response.status_code == 200
        directory = own.tesscut.cache.directory
        assert directory is not None and len(list(Path(directory).glob("*.zip"))) == 1
    assert not Path(directory).exists()


# --- the TIC ----------------------------------------------------------------------------------------------------


def invoke(mast_client: httpx.Client, request: dict[str, object]) -> dict:
    response = mast_client.post(INVOKE, data={"request": json.dumps(request)}, headers={"Accept": "text/plain"})
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_CONTENT_TYPE
    return orjson.loads(response.content)


def tic_request(*ids: str, columns: str = "*") -> dict[str, object]:
    return {
        "service": "Mast.Catalogs.Filtered.Tic",
        "format": "json",
        "params": {"columns": columns, "filters": [{"paramName": "ID", "values": list(ids)}]},
        "pagesize": 10,
        "page": 1,
    }


def test_tic_lookup_by_id(mast_client: httpx.Client) -> None:
    result = invoke(mast_client, tic_request("214568914"))
    assert (result["status"], result["msg"]) == ("COMPLETE", "")
    (row,) = result["data"]
    assert row["ID"] == "214568914"
    assert (row["ra"], row["dec"], row["Tmag"], row["Teff"], row["rad"]) == (340.8004, -36.3439, 15.34, 31000.0, 0.18)
    types = {field["name"]: field["type"] for field in result["fields"]}
    assert types["ID"] == "string" and types["ra"] == types["Tmag"] == types["Teff"] == "float"
    assert set(types) == set(row)
    assert result["paging"]["rowsFiltered"] == 1 and result["paging"]["pagesFiltered"] == 1


def test_tic_targets_without_dv_data_and_the_northern_one(mast_client: httpx.Client) -> None:
    result = invoke(mast_client, tic_request("206462606", "206544316", "1000000001", columns="c.ID, ra, dec, Tmag"))
    rows = {row["ID"]: row for row in result["data"]}
    assert [field["name"] for field in result["fields"]] == ["ID", "ra", "dec", "Tmag"]
    assert (rows["206462606"]["ra"], rows["206462606"]["dec"], rows["206462606"]["Tmag"]) == (330.9041, -19.971, 9.76)
    assert (rows["206544316"]["ra"], rows["206544316"]["dec"], rows["206544316"]["Tmag"]) == (18.4189, -59.6598, 11.6)
    north = rows["1000000001"]
    sectors = mast_client.get(SECTOR, params={"ra": north["ra"], "dec": north["dec"]}).json()
    assert sectors == {"results": []}


def test_unknown_tic_and_unknown_service(mast_client: httpx.Client) -> None:
    missing = invoke(mast_client, tic_request("999"))
    assert missing["status"] == "COMPLETE" and missing["data"] == [] and missing["paging"]["rowsFiltered"] == 0
    error = invoke(mast_client, {"service": "Mast.Caom.Cone", "params": {}, "format": "json"})
    assert error["status"] == "ERROR" and error["msg"] and error["data"] == []
    broken = mast_client.post(INVOKE, data={"request": "{not json"}).json()
    assert broken["status"] == "ERROR"


def test_tic_cone_search(mast_client: httpx.Client) -> None:
    cone = {"service": "Mast.Catalogs.Tic.Cone", "params": {"ra": WEIRD[0], "dec": WEIRD[1], "radius": 0.01}}
    assert [row["ID"] for row in invoke(mast_client, cone)["data"]] == ["214568914"]


# --- unmodified astroquery --------------------------------------------------------------------------------------


def test_astroquery_tesscut_against_the_emulator(private_mast: FakeMast, tmp_path: Path) -> None:
    from astroquery.exceptions import NoResultsWarning
    from astroquery.mast import TesscutClass

    tesscut = TesscutClass()
    tesscut._service_api_connection.REQUEST_URL = private_mast.url + "/tesscut/api/v0.1/"
    sample = SkyCoord(107.27, -70.0, unit="deg")

    sectors = tesscut.get_sectors(coordinates=SkyCoord(*PI_MEN, unit="deg"))
    assert list(sectors["sector"]) == [1, 4, 8, 11, 12, 13] and sectors["sectorName"][0] == "tess-s0001-4-2"

    (cutout,) = tesscut.get_cutouts(coordinates=sample, size=5, sector=1)
    assert cutout.filename == "tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits"
    assert len(cutout["PIXELS"].data) == 1282

    (cutout,) = tesscut.get_cutouts(coordinates=SkyCoord(*WEIRD, unit="deg"), size=5, sector=1)
    assert cutout.filename == "tess-s0001-1-2_340.8004000_-36.3439000_5-x-5_astrocut.fits"
    assert cutout["PIXELS"].data["FLUX"].shape == (1282, 5, 5)

    paths = tesscut.download_cutouts(coordinates=sample, size=5, sector=1, path=tmp_path)
    (local,) = paths["Local Path"]
    assert Path(local).name == "tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits" and Path(local).is_file()

    with pytest.warns(NoResultsWarning, match="No FFIs found"):
        assert tesscut.get_cutouts(coordinates=SkyCoord(*NORTH, unit="deg"), size=5) == []
    with pytest.warns(NoResultsWarning, match="not in any TESS sector"):
        assert len(tesscut.get_sectors(coordinates=SkyCoord(*NORTH, unit="deg"))) == 0
    assert private_mast.count(endpoint="tesscut.astrocut") == 4 and private_mast.count(endpoint="tesscut.sector") == 2


def test_astroquery_catalogs_against_the_emulator(private_mast: FakeMast) -> None:
    from astroquery.mast import CatalogsClass

    catalogs = CatalogsClass()
    portal = catalogs._portal_api_connection
    portal.MAST_REQUEST_URL = private_mast.invoke_url
    portal.COLUMNS_CONFIG_URL = private_mast.url + "/portal/Mashup/Mashup.asmx/columnsconfig"
    table = catalogs.query_criteria(catalog="Tic", ID=206544316)
    assert list(table["ID"]) == ["206544316"]
    assert table["Tmag"][0] == pytest.approx(11.6)
    assert private_mast.count(endpoint="mast.invoke") >= 2
