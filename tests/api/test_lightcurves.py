"""DV light curves in JSON, CSV and FITS through HTTP, against the emulator."""

import io
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from tests.conftest import WASP126_TIC, WEIRD_TCE, WEIRD_TIC

pytestmark = pytest.mark.anyio

LC_PATH = f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}/lightcurve"
EXPECTED_COLUMNS = [
    "TICID",
    "EXTNAME",
    "TIME",
    "TIMECORR",
    "CADENCENO",
    "PHASE",
    "LC_INIT",
    "LC_INIT_ERR",
    "LC_WHITE",
    "LC_DETREND",
    "MODEL_INIT",
    "MODEL_WHITE",
    "DATE_OBS",
    "TESSDatetime",
    "SECTORS",
]


def as_float(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


async def test_json_has_all_columns_typed_and_the_dip(client):
    response = await client.get(LC_PATH)
    assert response.status_code == 200
    body = response.json()
    assert list(body["columns"]) == EXPECTED_COLUMNS
    assert body["n_rows"] >= 15_000
    assert all(len(values) == body["n_rows"] for values in body["columns"].values())
    assert body["units"]["TIME"] == "BJD - 2457000, days"
    assert body["datatypes"]["CADENCENO"] == "int"
    assert all(isinstance(v, int) for v in body["columns"]["CADENCENO"][:100])
    assert all(isinstance(v, str) for v in body["columns"]["DATE_OBS"][:100])
    detrend = as_float(body["columns"]["LC_DETREND"])
    assert np.isnan(detrend).any(), "gapped cadences come through as null"

    time = as_float(body["columns"]["TIME"])
    in_dip = np.abs(time - 1334.45) < 0.1
    second_epoch = np.abs(time - (1334.45 + 11.6186)) < 0.1
    assert np.nanmedian(detrend[in_dip]) < -0.015
    assert np.nanmedian(detrend[second_epoch]) > -0.005
    assert np.nanmin(as_float(body["columns"]["MODEL_INIT"])[second_epoch]) < -0.01, "the model is periodic"


async def test_columns_and_time_window_select(client):
    response = await client.get(LC_PATH, params={"columns": "time,lc_detrend", "start": 1334.0, "end": 1335.0})
    assert response.status_code == 200
    body = response.json()
    assert list(body["columns"]) == ["TIME", "LC_DETREND"]
    time = np.array(body["columns"]["TIME"])
    assert time.min() >= 1334.0 and time.max() <= 1335.0
    assert 600 < body["n_rows"] < 721, "one day of 2-min cadences, less flagged ones"
    assert (body["start_btjd"], body["end_btjd"]) == (1334.0, 1335.0)


async def test_csv_and_fits_hold_the_same_numbers_as_json(client):
    window = {"start": 1334.2, "end": 1334.7}
    as_json = (await client.get(LC_PATH, params=window)).json()
    csv_response = await client.get(LC_PATH, params={**window, "format": "csv"})
    fits_response = await client.get(LC_PATH, params=window, headers={"Accept": "application/fits"})

    assert csv_response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="tic214568914_s0001-s0001_TCE_1_dvt.csv"' in csv_response.headers["content-disposition"]
    assert fits_response.headers["content-type"] == "application/fits"
    assert fits_response.headers["vary"] == "Accept"

    csv_table = Table.read(csv_response.text, format="ascii.csv")
    with fits.open(io.BytesIO(fits_response.content)) as hdus:
        fits_table = hdus["TCE_1"].data
        assert hdus["TCE_1"].columns["TIME"].unit == "BJD - 2457000, days"
        for name in ("TIME", "LC_INIT", "LC_DETREND", "MODEL_INIT", "PHASE"):
            expected = as_float(as_json["columns"][name])
            np.testing.assert_array_equal(np.asarray(fits_table[name], dtype=float), expected)
            np.testing.assert_array_equal(np.ma.filled(csv_table[name].astype(float), np.nan), expected)
        assert list(fits_table["CADENCENO"]) == as_json["columns"]["CADENCENO"]
        assert list(csv_table["CADENCENO"]) == as_json["columns"]["CADENCENO"]
        assert [s.strip() for s in fits_table["DATE_OBS"]] == as_json["columns"]["DATE_OBS"]


async def test_fits_carries_the_dv_headers_as_given(client):
    info = (await client.get(f"/tic/{WEIRD_TIC}/tces/{WEIRD_TCE}")).json()
    response = await client.get(LC_PATH, params={"format": "fits", "columns": "TIME,LC_DETREND"})
    # checksum=True verifies CHECKSUM/DATASUM; a mismatch warns, and warnings are errors in this suite.
    with fits.open(io.BytesIO(response.content), checksum=True) as hdus:
        checks = [(hdus[0].header, info["dv_primary_header"]), (hdus[1].header, info["dv_data_header"])]
        compared = 0
        for header, given in checks:
            for key in ("OBJECT", "TICID", "RA_OBJ", "DEC_OBJ", "TESSMAG", "TEFF", "TPERIOD", "TEPOCH", "TDEPTH"):
                if key in given and given[key] is not None:
                    assert header[key] == given[key], key
                    compared += 1
        assert compared >= 8
        skipped = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "NEXTEND", "XTENSION", "PCOUNT"}
        skipped |= {"GCOUNT", "TFIELDS", "EXTNAME", "EXTVER", "CHECKSUM", "DATASUM"}
        for key, value in info["dv_data_header"].items():
            if key in skipped or value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            assert hdus[1].header[key] == value, key
        assert hdus[1].header["NAXIS2"] == len(hdus[1].data)


async def test_real_wasp126_light_curve_round_trips(client):
    tces = (await client.get(f"/tic/{WASP126_TIC}/tces")).json()["tces"]
    tce_id = tces[0]["id"]
    body = (await client.get(f"/tic/{WASP126_TIC}/tces/{tce_id}/lightcurve", params={"columns": "TIME,LC_INIT"})).json()
    flux = as_float(body["columns"]["LC_INIT"])
    assert body["n_rows"] > 15_000
    assert abs(np.nanmedian(flux)) < 1e-3, "LC_INIT is relative flux around zero"


@pytest.mark.parametrize(
    ("params", "headers", "status", "words"),
    [
        ({"columns": "TIME,FLUX"}, {}, 422, "Unknown column(s) FLUX"),
        ({"columns": ","}, {}, 422, "names no column"),
        ({"start": 1335, "end": 1334}, {}, 422, "start (1335.0) is after end"),
        ({"start": "soon"}, {}, 422, "query parameter 'start'"),
        ({"start": "nan"}, {}, 422, "query parameter 'start'"),
        ({"format": "xlsx"}, {}, 422, "query parameter 'format'"),
        ({}, {"Accept": "image/png"}, 406, "Accept 'image/png'"),
    ],
)
async def test_bad_light_curve_requests_are_problems(client, mast, params, headers, status, words):
    response = await client.get(LC_PATH, params=params, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


async def test_accept_negotiation_picks_csv_and_wildcards_get_json(client):
    csv_response = await client.get(LC_PATH, params={"columns": "TIME"}, headers={"Accept": "text/csv"})
    assert csv_response.text.startswith("TIME\n")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    json_response = await client.get(LC_PATH, params={"columns": "TIME"}, headers={"Accept": browser})
    assert json_response.headers["content-type"] == "application/json"
