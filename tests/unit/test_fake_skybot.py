"""The emulator's SkyBoT cone search over real HTTP on loopback, and unmodified astroquery against it."""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

import httpx
import pytest
from astropy.io.votable import parse
from astropy.time import Time

from tests.fake_mast import FakeMast
from tests.fake_mast.catalogs import catalogue_positions
from tests.fake_mast.footprints import angular_separation_deg
from tests.fake_mast.scene import MOVER_CLOSEST_BTJD, MOVER_SPEED_PX_PER_DAY, mover_sky_position

CLOSEST_JD = MOVER_CLOSEST_BTJD + 2457000.0
TESS_PIXEL_ARCSEC = 21.0
FIELDS = ("num", "name", "ra", "de", "class", "magV", "errpos", "angdist", "dracosdec", "ddec", "dgeo", "dhelio")
EXTRAS = ("phase", "solelong", "px", "py", "pz", "vx", "vy", "vz", "jdref")


def _weird() -> tuple[float, float]:
    return next((ra, dec) for tic, ra, dec, _ in catalogue_positions() if tic == 214568914)


def cone(mast: FakeMast, ra: float, dec: float, radius_deg: float, epoch_jd: float, **extra: str) -> httpx.Response:
    params = {
        "-ra": str(ra),
        "-dec": str(dec),
        "-rd": str(radius_deg),
        "-ep": str(epoch_jd),
        "-loc": "C57",
        "-mime": "votable",
        "-output": "all",
        "-filter": "120",
        "-objFilter": "111",
        "-refsys": "EQJ2000",
        **extra,
    }
    return httpx.get(mast.skybot_url, params=params)


def table_of(body: bytes) -> tuple[str, Any]:
    votable = parse(io.BytesIO(body))
    status = next(info for info in votable.resources[0].infos if info.name == "QUERY_STATUS")
    return status.value, votable.get_first_table()


def test_finds_the_scene_mover_near_tic_214568914(mast: FakeMast) -> None:
    ra, dec = _weird()
    response = cone(mast, ra, dec, 0.05, CLOSEST_JD)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    status, table = table_of(response.content)
    assert status == "OK"
    assert tuple(field.ID for field in table.fields) == FIELDS + EXTRAS
    row = table.array[0]
    assert len(table.array) == 1
    assert row["class"] == "MB>Middle"
    body_ra, body_dec = mover_sky_position(MOVER_CLOSEST_BTJD)
    # 2.5 px from the target at its closest, through the CCD's WCS.
    assert 2.0 * TESS_PIXEL_ARCSEC < row["angdist"] < 3.0 * TESS_PIXEL_ARCSEC
    assert row["angdist"] == pytest.approx(angular_separation_deg(ra, dec, body_ra, body_dec) * 3600, abs=0.01)
    rate_arcsec_h = math.hypot(row["dracosdec"], row["ddec"])
    assert rate_arcsec_h == pytest.approx(MOVER_SPEED_PX_PER_DAY * TESS_PIXEL_ARCSEC / 24, rel=0.1)
    assert row["jdref"] == pytest.approx(CLOSEST_JD)


def test_the_position_follows_the_epoch(mast: FakeMast) -> None:
    ra, dec = _weird()
    later = CLOSEST_JD + 0.4  # 16 px further along the track, still in a 0.2° cone
    _, table = table_of(cone(mast, ra, dec, 0.2, later).content)
    assert len(table.array) == 1
    assert table.array[0]["angdist"] > 10 * TESS_PIXEL_ARCSEC


def test_nothing_elsewhere_or_at_another_time(mast: FakeMast) -> None:
    ra, dec = _weird()
    for response in (cone(mast, 10.0, 40.0, 1.0, CLOSEST_JD), cone(mast, ra, dec, 0.05, CLOSEST_JD + 5)):
        assert response.status_code == 200
        status, table = table_of(response.content)
        assert status == "OK"
        assert len(table.array) == 0
        assert "num" in {field.ID for field in table.fields}


def test_basic_output_has_no_extras(mast: FakeMast) -> None:
    ra, dec = _weird()
    _, table = table_of(cone(mast, ra, dec, 0.05, CLOSEST_JD, **{"-output": "basic"}).content)
    assert tuple(field.ID for field in table.fields) == FIELDS


@pytest.mark.parametrize(
    ("name", "value"), [("-ra", "north"), ("-dec", "91"), ("-rd", "0"), ("-rd", "12"), ("-objFilter", "1x1")]
)
def test_bad_input_is_a_votable_error(mast: FakeMast, name: str, value: str) -> None:
    response = cone(mast, 340.8, -36.3, 0.05, CLOSEST_JD, **{name: value})
    assert response.status_code == 400
    votable = parse(io.BytesIO(response.content))
    status = next(info for info in votable.resources[0].infos if info.name == "QUERY_STATUS")
    assert status.value == "ERROR"


def test_missing_epoch_is_an_error(mast: FakeMast) -> None:
    response = httpx.get(mast.skybot_url, params={"-ra": "1", "-dec": "1", "-rd": "0.1"})
    assert response.status_code == 400
    assert b"-ep" in response.content


def test_faults_and_counters_apply(mast: FakeMast) -> None:
    ra, dec = _weird()
    mast.set_fault("/webservices/skybot/*", status=503, times=1)
    assert cone(mast, ra, dec, 0.05, CLOSEST_JD).status_code == 503
    assert cone(mast, ra, dec, 0.05, CLOSEST_JD).status_code == 200
    assert mast.count(endpoint="skybot.conesearch") == 2


def test_astroquery_parses_the_answer(mast: FakeMast, monkeypatch: pytest.MonkeyPatch) -> None:
    from astropy.coordinates import SkyCoord
    from astroquery.exceptions import NoResultsWarning
    from astroquery.imcce import Skybot, conf, core

    class PointedAtEmulator:
        """astroquery's own configuration but for the server URL (the SkyBoT item only accepts its listed URLs)."""

        skybot_server = mast.skybot_url

        def __getattr__(self, name: str) -> object:
            return getattr(conf, name)

    monkeypatch.setattr(core, "conf", PointedAtEmulator())
    ra, dec = _weird()
    epoch = Time(CLOSEST_JD, format="jd")
    found = Skybot.cone_search(SkyCoord(ra, dec, unit="deg"), 0.05, epoch, location="C57", cache=False)
    assert list(found["Name"]) == ["2002 TV318"]
    assert int(found["Number"][0]) == 90917
    assert found["Type"][0] == "MB>Middle"
    body_ra, body_dec = mover_sky_position(MOVER_CLOSEST_BTJD)
    assert found["RA"][0].to_value("deg") == pytest.approx(body_ra, abs=1e-5)
    assert found["DEC"][0].to_value("deg") == pytest.approx(body_dec, abs=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoResultsWarning)
        empty = Skybot.cone_search(SkyCoord(10, 40, unit="deg"), 0.05, epoch, location="C57", cache=False)
    assert len(empty) == 0
