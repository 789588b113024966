"""The MAST emulator, exercised over real HTTP on loopback exactly as the service will use it."""

from __future__ import annotations

import http.client
import json
import math
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fake_mast import FakeMast
from tests.fake_mast.exomast import render_table_json
from tests.fake_mast.targets import DvArchive

REPO_ROOT = Path(__file__).resolve().parents[2]
NGINX_504_BYTES = (REPO_ROOT / "tests" / "data" / "tesscut_astrocut_504_gateway_timeout.html").read_bytes()

WEIRD_TIC = 214568914
WASP18_TIC = 100100827
WASP126_TIC = 25155310
TCES_PATH = f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/tces/"
TABLE_PATH = f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/table/"
WEIRD_TCE = {"tce": "TCE_1", "sector": "s0001-s0001"}
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"

TABLE_COLUMNS = [
    "TICID", "EXTNAME", "TIME", "TIMECORR", "CADENCENO", "PHASE", "LC_INIT", "LC_INIT_ERR", "LC_WHITE",
    "LC_DETREND", "MODEL_INIT", "MODEL_WHITE", "DATE_OBS", "TESSDatetime", "SECTORS",
]  # fmt: skip
PRIMARY_KEYWORDS = {
    "SIMPLE", "BITPIX", "NAXIS", "EXTEND", "NEXTEND", "EXTNAME", "EXTVER", "SIMDATA", "ORIGIN", "DATE", "TSTART",
    "TSTOP", "DATE-OBS", "DATE-END", "CREATOR", "PROCVER", "FILEVER", "TIMVERSN", "TELESCOP", "INSTRUME",
    "DATA_REL", "OBJECT", "TICID", "SECTOR", "PXTABLE", "RESFILE", "DVVERSN", "NUMTCES", "SECTORS", "RADESYS",
    "RA_OBJ", "DEC_OBJ", "EQUINOX", "PMRA", "PMDEC", "PMTOTAL", "TESSMAG", "TEFF", "LOGG", "MH", "RADIUS",
    "TICVER", "CHECKSUM",
}  # fmt: skip
DATA_KEYWORDS = {
    "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "TFIELDS", "EXTNAME", "EXTVER",
    "TELESCOP", "INSTRUME", "OBJECT", "TICID", "RA_OBJ", "DEC_OBJ", "TIMEREF", "TASSIGN", "TIMESYS", "BJDREFI",
    "BJDREFF", "TIMEUNIT", "TELAPSE", "LIVETIME", "TSTART", "TSTOP", "DATE-OBS", "DATE-END", "TIMEDEL", "TPERIOD",
    "TEPOCH", "TDEPTH", "TSNR", "TDUR", "INDUR", "IMPACT", "INCLIN", "DRRATIO", "RADRATIO", "PRADIUS", "MAXMES",
    "MAXSES", "MEDDETR", "NTRANS", "CHECKSUM",
}  # fmt: skip


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
    with httpx.Client(base_url=private_mast.url, timeout=10.0) as http_client:
        yield http_client


@pytest.fixture(scope="module")
def weird_table(private_mast: FakeMast) -> dict:
    with httpx.Client(base_url=private_mast.url, timeout=10.0) as http_client:
        response = http_client.get(TABLE_PATH, params=WEIRD_TCE)
    assert response.status_code == 200
    return orjson.loads(response.content)


def rows_near(rows: list[dict], time_btjd: float, half_width_days: float = 0.1) -> list[dict]:
    return [row for row in rows if abs(row["TIME"] - time_btjd) <= half_width_days]


# ---------------------------------------------------------------------------------------------------------------
# Addresses


def test_urls(private_mast: FakeMast) -> None:
    assert private_mast.url.startswith("http://127.0.0.1:")
    assert not private_mast.url.endswith("/")
    assert private_mast.exomast_url == private_mast.url + "/api/v0.1/"


# ---------------------------------------------------------------------------------------------------------------
# tces


@pytest.mark.parametrize("star_id", ["214568914", "00214568914"])
def test_tces_accepts_plain_and_zero_padded_tic(mast_client: httpx.Client, star_id: str) -> None:
    response = mast_client.get(f"/api/v0.1/dvdata/tess/{star_id}/tces/")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_CONTENT_TYPE
    assert response.content == b'{"TCE":["s0001-s0001:TCE_1"]}'


def test_tces_of_wasp18_are_deliberately_unsorted(mast_client: httpx.Client) -> None:
    tces = mast_client.get(f"/api/v0.1/dvdata/tess/{WASP18_TIC}/tces").json()["TCE"]
    assert tces[:3] == ["s0001-s0003:TCE_1", "s0002-s0002:TCE_1", "s0001-s0001:TCE_1"]
    assert len(tces) == 6
    assert tces != sorted(tces)
    # What beginner_tess_exomast does with the list.
    assert [x[:11] for x in tces if "TCE_1" in x] == ["s0001-s0003", "s0002-s0002", "s0001-s0001", "s0003-s0003"]


@pytest.mark.parametrize("star_id", ["abc", "123456789012", "12a"])
def test_malformed_star_id_is_400(mast_client: httpx.Client, star_id: str) -> None:
    response = mast_client.get(f"/api/v0.1/dvdata/tess/{star_id}/tces/")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_unknown_tic_is_404(mast_client: httpx.Client) -> None:
    response = mast_client.get("/api/v0.1/dvdata/tess/12345/tces/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No TESS DV data found for TIC 12345"}
    response = mast_client.get("/api/v0.1/dvdata/tess/0012345/table/", params=WEIRD_TCE)
    assert response.status_code == 404


# ---------------------------------------------------------------------------------------------------------------
# info


def test_info_headers_carry_the_dv_keywords(mast_client: httpx.Client) -> None:
    response = mast_client.get(f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/info/", params=WEIRD_TCE)
    assert response.status_code == 200
    info = response.json()
    assert set(info) == {"DV Primary Header", "DV Data Header"}
    primary, data = info["DV Primary Header"], info["DV Data Header"]
    assert PRIMARY_KEYWORDS <= set(primary)
    assert DATA_KEYWORDS <= set(data)
    assert primary["OBJECT"] == f"TIC {WEIRD_TIC}"
    assert primary["TESSMAG"] == 15.34 and primary["TEFF"] == 31000.0
    assert len(primary["SECTORS"]) == 17 and len(primary["CHECKSUM"]) == 16
    assert primary["DATE-OBS"] == "2018-07-25T19:01:42.709Z"  # the real s1 header's value for the same TSTART
    assert data["RA_OBJ"] == 340.8004 and data["DEC_OBJ"] == -36.3439
    assert (data["TPERIOD"], data["TEPOCH"], data["TDEPTH"], data["NTRANS"]) == (11.6186, 1334.45, 24447.6, 2)
    assert data["MAXSES"] > data["MAXMES"]
    assert data["NAXIS2"] >= 15_000


def test_info_lists_tces_when_flag_is_present(mast_client: httpx.Client) -> None:
    path = f"/api/v0.1/dvdata/tess/{WASP18_TIC}/info/"
    bare_flag = mast_client.get(path + "?tce=TCE_1&sector=s0002-s0002&list_tce").json()
    with_value = mast_client.get(path, params={"tce": "1", "sector": "2", "list_tce": "true"}).json()
    without = mast_client.get(path, params={"tce": "1", "sector": "2"}).json()
    tces = mast_client.get(f"/api/v0.1/dvdata/tess/{WASP18_TIC}/tces/").json()["TCE"]
    assert bare_flag["TCE"] == with_value["TCE"] == tces
    assert "TCE" not in without
    assert bare_flag["DV Data Header"] == without["DV Data Header"]  # "1"/"2" mean TCE_1/s0002-s0002
    assert without["DV Data Header"]["PRADIUS"] == 12.97791


def test_info_multi_sector_values(mast_client: httpx.Client) -> None:
    info = mast_client.get(
        f"/api/v0.1/dvdata/tess/{WASP18_TIC}/info/", params={"tce": "TCE_1", "sector": "s0001-s0003"}
    ).json()
    assert info["DV Primary Header"]["OBJECT"] == "TIC 100100827"
    assert info["DV Primary Header"]["NUMTCES"] == 2
    assert info["DV Data Header"]["PRADIUS"] == 12.97984
    assert info["DV Data Header"]["NAXIS2"] > 45_000


@pytest.mark.parametrize("route", ["info", "table"])
def test_missing_parameters_are_400(mast_client: httpx.Client, route: str) -> None:
    path = f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/{route}/"
    response = mast_client.get(path, params={"tce": "TCE_1"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Missing sector in TESS request"}
    response = mast_client.get(path, params={"sector": "s0001-s0001"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Missing tce in request"}


def test_tce_not_in_sector_range_is_404(mast_client: httpx.Client) -> None:
    path = f"/api/v0.1/dvdata/tess/{WASP18_TIC}/info/"
    assert mast_client.get(path, params={"tce": "TCE_2", "sector": "s0001-s0001"}).status_code == 404
    assert mast_client.get(path, params={"tce": "TCE_1", "sector": "s0004-s0004"}).status_code == 404
    assert mast_client.get(path, params={"tce": "TCE_1", "sector": "bogus"}).status_code == 400


# ---------------------------------------------------------------------------------------------------------------
# table and columns


def test_table_shape(weird_table: dict) -> None:
    assert [field["colname"] for field in weird_table["fields"]] == TABLE_COLUMNS
    assert all(set(field) == {"colname", "datatype", "description"} for field in weird_table["fields"])
    datatypes = {field["colname"]: field["datatype"] for field in weird_table["fields"]}
    assert datatypes["TIME"] == "real" and datatypes["TICID"] == "int" and datatypes["EXTNAME"] == "varchar(10)"
    rows = weird_table["data"]
    assert len(rows) >= 15_000
    assert all(list(row) == TABLE_COLUMNS for row in rows)
    first = rows[0]
    assert (first["TICID"], first["EXTNAME"], first["SECTORS"]) == (WEIRD_TIC, "TCE_1", "s0001-s0001")
    assert first["DATE_OBS"].replace(" ", "T") == first["TESSDatetime"]
    assert len(first["DATE_OBS"]) == 23
    # Flagged cadences are null, but their time stamps are not.
    assert any(row["LC_INIT"] is None for row in rows)
    assert all(isinstance(row["TIME"], float) for row in rows)
    period_days = 11.6186
    assert all(-period_days / 2 <= row["PHASE"] < period_days / 2 for row in rows)


def test_table_has_the_single_dip_and_a_periodic_model(weird_table: dict) -> None:
    rows = weird_table["data"]
    at_first_epoch = rows_near(rows, 1334.45)
    at_second_epoch = rows_near(rows, 1346.07)
    detrended_first = [row["LC_DETREND"] for row in at_first_epoch if row["LC_DETREND"] is not None]
    detrended_second = [row["LC_DETREND"] for row in at_second_epoch if row["LC_DETREND"] is not None]
    assert statistics.median(detrended_first) < -0.015
    assert statistics.median(detrended_second) > -0.005
    assert all(row["MODEL_INIT"] < 0 for row in at_first_epoch)
    assert all(row["MODEL_INIT"] < 0 for row in at_second_epoch)
    assert min(row["MODEL_INIT"] for row in rows) == pytest.approx(-0.0244476)


def test_table_has_the_downlink_gap(weird_table: dict) -> None:
    times = [row["TIME"] for row in weird_table["data"]]
    assert times == sorted(times)
    assert not [t for t in times if 1338.6 < t < 1339.6]
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) > 1.0


def test_wasp126_table_comes_from_the_real_light_curve(mast_client: httpx.Client) -> None:
    response = mast_client.get(f"/api/v0.1/dvdata/tess/{WASP126_TIC}/table/", params={"tce": "1", "sector": "1"})
    rows = orjson.loads(response.content)["data"]
    in_transit = [r["LC_DETREND"] for r in rows if abs(r["PHASE"]) < 1 / 24 and r["LC_DETREND"] is not None]
    assert statistics.median(in_transit) == pytest.approx(-0.007, abs=0.0015)
    assert rows[0]["CADENCENO"] == 70444  # the real first cadence of the SPOC file


def test_columns_route(mast_client: httpx.Client, weird_table: dict) -> None:
    response = mast_client.get("/api/v0.1/dvdata/tess/info/")
    assert response.status_code == 200
    description = response.json()["DV Data Table Description"]
    assert [list(entry) for entry in description] == [["description", "colname", "datatype"]] * 15
    assert [entry["colname"] for entry in description] == TABLE_COLUMNS


def test_generation_is_deterministic(mast_client: httpx.Client) -> None:
    first = render_table_json(DvArchive().table(WEIRD_TIC, 1, 1, 1))
    second = render_table_json(DvArchive().table(WEIRD_TIC, 1, 1, 1))
    assert first == second
    assert mast_client.get(TABLE_PATH, params=WEIRD_TCE).content == first


# ---------------------------------------------------------------------------------------------------------------
# Faults


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (504, "text/html", NGINX_504_BYTES),
        (500, "text/plain", b"Internal Server Error"),
        (429, JSON_CONTENT_TYPE, b'{"detail":"Too Many Requests"}'),
    ],
)
def test_status_faults(
    private_mast: FakeMast, mast_client: httpx.Client, status: int, content_type: str, body: bytes
) -> None:
    private_mast.set_fault("/api/v0.1/dvdata/tess/*/tces/", status=status)
    response = mast_client.get(TCES_PATH)
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    assert response.content == body


def test_status_503_is_an_nginx_page(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault("*", status=503)
    response = mast_client.get(TCES_PATH)
    assert response.status_code == 503
    assert response.headers["content-type"] == "text/html"
    assert b"<title>503 Service Temporarily Unavailable</title>" in response.content


def test_truncate_drops_the_connection_mid_body(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TCES_PATH, body="truncate")
    with pytest.raises(httpx.TransportError):
        mast_client.get(TCES_PATH)
    private_mast.clear_faults()
    assert mast_client.get(TCES_PATH).status_code == 200  # a fresh connection works again


def test_drop_closes_without_a_response(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TCES_PATH, body="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        mast_client.get(TCES_PATH)


def test_malformed_json(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TCES_PATH, body="malformed")
    response = mast_client.get(TCES_PATH)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content) > 0
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_nan_tokens(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TABLE_PATH, body="nan")
    response = mast_client.get(TABLE_PATH, params=WEIRD_TCE)
    assert b":NaN" in response.content and b"null" not in response.content
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)
    rows = json.loads(response.content)["data"]  # Python's json accepts the token
    assert any(isinstance(row["LC_INIT"], float) and math.isnan(row["LC_INIT"]) for row in rows)


def test_empty_body(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TCES_PATH, body="empty")
    response = mast_client.get(TCES_PATH)
    assert (response.status_code, response.content) == (200, b"")


def test_content_type_override(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TCES_PATH, content_type="text/json; charset=UTF-8")
    response = mast_client.get(TCES_PATH)
    assert response.headers["content-type"] == "text/json; charset=UTF-8"
    assert response.json() == {"TCE": ["s0001-s0001:TCE_1"]}


def test_times_limits_a_fault(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TCES_PATH, status=503, times=1)
    assert mast_client.get(TCES_PATH).status_code == 503
    assert mast_client.get(TCES_PATH).status_code == 200
    assert private_mast.faults() == []


def test_latest_matching_fault_wins(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault("*", status=500)
    private_mast.set_fault("/api/v0.1/dvdata/tess/*/tces/", status=504)
    assert mast_client.get(TCES_PATH).status_code == 504
    assert mast_client.get("/api/v0.1/dvdata/tess/info/").status_code == 500


def test_delay(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TCES_PATH, delay_s=0.2)
    started = time.perf_counter()
    response = mast_client.get(TCES_PATH)
    assert time.perf_counter() - started >= 0.2
    assert response.status_code == 200
    private_mast.set_fault(TCES_PATH, delay_s=1.0)
    with pytest.raises(httpx.ReadTimeout):
        mast_client.get(TCES_PATH, timeout=0.1)


def test_start_is_idempotent_and_restart_keeps_the_port() -> None:
    other = FakeMast()
    assert other.start() is other and other.start() is other
    url = other.url
    other.stop()
    other.stop()
    with other:
        assert other.url == url
        assert httpx.get(other.url + TCES_PATH).status_code == 200


def test_set_fault_rejects_nonsense(private_mast: FakeMast) -> None:
    with pytest.raises(ValueError):
        private_mast.set_fault("*", body="explode")
    with pytest.raises(ValueError):
        private_mast.set_fault("*", times=0)


# ---------------------------------------------------------------------------------------------------------------
# Counters and the control API


def test_counters_per_path_and_endpoint(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault(TCES_PATH, status=503, times=1)
    mast_client.get(TCES_PATH)  # faulted, still counted
    mast_client.get(TCES_PATH)
    mast_client.get(f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/info/?tce=1&sector=1")
    mast_client.get("/api/v0.1/dvdata/tess/info")
    mast_client.get("/nowhere")
    assert private_mast.counters() == {
        "paths": {
            TCES_PATH: 2,
            f"/api/v0.1/dvdata/tess/{WEIRD_TIC}/info/": 1,
            "/api/v0.1/dvdata/tess/info": 1,
            "/nowhere": 1,
        },
        "endpoints": {"exomast.tces": 2, "exomast.info": 1, "exomast.columns": 1, "unknown": 1},
    }
    assert private_mast.count(endpoint="exomast.tces") == 2
    assert private_mast.count(path=TCES_PATH) == 2
    assert private_mast.count() == 5
    private_mast.reset()
    assert private_mast.counters() == {"paths": {}, "endpoints": {}}


def test_counters_are_thread_safe(private_mast: FakeMast) -> None:
    def fetch(_: int) -> int:
        with httpx.Client(base_url=private_mast.url) as http_client:
            return sum(http_client.get(TCES_PATH).status_code for _ in range(5))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(fetch, range(8))) == 200 * 40
    assert private_mast.count(endpoint="exomast.tces") == 40


def test_http_control_api(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    created = mast_client.post("/__fake__/faults", json={"path": TCES_PATH, "status": 504, "times": 2})
    assert created.status_code == 201
    assert mast_client.get(TCES_PATH).content == NGINX_504_BYTES
    assert mast_client.get("/__fake__/faults").json()["faults"][0]["times"] == 1
    assert mast_client.delete("/__fake__/faults").status_code == 200
    assert mast_client.get(TCES_PATH).status_code == 200

    counters = mast_client.get("/__fake__/counters").json()
    assert counters == {"paths": {TCES_PATH: 2}, "endpoints": {"exomast.tces": 2}}  # control calls not counted
    assert mast_client.post("/__fake__/reset").status_code == 200
    assert mast_client.get("/__fake__/counters").json() == {"paths": {}, "endpoints": {}}

    assert mast_client.post("/__fake__/faults", json={"path": "*", "body": "explode"}).status_code == 400
    assert mast_client.post("/__fake__/faults", json={"path": "*", "colour": "red"}).status_code == 400
    assert mast_client.post("/__fake__/faults", content=b"{not json").status_code == 400


def test_control_api_ignores_faults(private_mast: FakeMast, mast_client: httpx.Client) -> None:
    private_mast.set_fault("*", body="drop")
    assert mast_client.get("/__fake__/counters").status_code == 200
    assert mast_client.delete("/__fake__/faults").status_code == 200


# ---------------------------------------------------------------------------------------------------------------
# HTTP behaviour


def test_keep_alive_serves_several_requests_on_one_connection(private_mast: FakeMast) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", private_mast.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", TCES_PATH)
            response = connection.getresponse()
            assert response.status == 200
            assert response.read() == b'{"TCE":["s0001-s0001:TCE_1"]}'
            assert not response.will_close
    finally:
        connection.close()


def test_method_not_allowed(mast_client: httpx.Client) -> None:
    response = mast_client.post(TCES_PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_stop_hangs_up_pooled_connections() -> None:
    with FakeMast() as other, httpx.Client(base_url=other.url) as http_client:
        assert http_client.get(TCES_PATH).status_code == 200
        other.stop()
        with pytest.raises(httpx.TransportError):
            http_client.get(TCES_PATH)


@pytest.mark.process
def test_runs_as_a_module_and_exits_on_sigint() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fake_mast", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 20)
            assert ready, "the emulator printed nothing within 20 s"
            assert process.stdout.readline().strip() == f"fake MAST listening on http://127.0.0.1:{port}"
            response = httpx.get(f"http://127.0.0.1:{port}{TCES_PATH}", timeout=5)
            assert response.json() == {"TCE": ["s0001-s0001:TCE_1"]}
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=10)
            assert process.returncode == 0, stderr
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
