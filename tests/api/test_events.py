"""Events in a TCE's DV light curve, and its predicted transits, through HTTP against the emulator."""

import dataclasses
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import WEIRD_TCE, WEIRD_TIC
from tests.fake_mast.server import FakeMast
from tests.fake_mast.targets import CATALOGUE, DvArchive

pytestmark = pytest.mark.anyio

WEIRD_EVENTS = f"/tic/{WEIRD_TIC}/tces/TCE_1/events"
WASP126_TIC = 25155310
WEIRD_DIP_BTJD = 1334.45
ALL_NAN_TIC, TWO_POINT_TIC = 900000001, 900000002


async def test_the_weird_dip_is_the_top_event_and_its_transit_does_not_repeat(client):
    response = await client.get(WEIRD_EVENTS)
    assert response.status_code == 200
    body = response.json()
    assert body["tce_id"] == WEIRD_TCE and body["source"] == "dv" and body["n_points"] > 10_000
    top = body["events"][0]
    assert top["kind"] == "dip"
    assert abs(top["t0_btjd"] - WEIRD_DIP_BTJD) <= top["duration_hours"] / 48
    assert top["snr"] > 3 * body["min_snr"]
    assert top["start_btjd"] < top["t0_btjd"] < top["end_btjd"]
    assert top["in_model_transit"] is True
    assert [e["snr"] for e in body["events"]] == sorted((e["snr"] for e in body["events"]), reverse=True)

    predicted = body["predicted_transits"]
    assert predicted["single_event"] is True
    assert predicted["n_predicted"] == 2 and predicted["n_observed"] == 2 and predicted["n_with_signal"] == 1
    first, second = predicted["transits"]
    assert abs(first["t_btjd"] - WEIRD_DIP_BTJD) < 0.01 and first["has_signal"]
    assert 0.5 < first["depth_ppm"] / first["model_depth_ppm"] < 1.5
    assert abs(second["t_btjd"] - 1346.07) < 0.01 and not second["has_signal"] and second["coverage"] > 0.5


async def test_wasp126_shows_every_predicted_transit(client):
    response = await client.get(f"/tic/{WASP126_TIC}/tces/TCE_1/events")
    predicted = response.json()["predicted_transits"]
    assert predicted["n_observed"] >= 5
    assert predicted["n_with_signal"] == predicted["n_observed"]
    assert predicted["single_event"] is False
    assert all(t["snr"] > 10 for t in predicted["transits"] if t["observed"])
    events = response.json()["events"]
    assert events and all(e["kind"] == "dip" and e["in_model_transit"] for e in events)


async def test_the_links_open_the_window_of_the_event(client):
    top = (await client.get(WEIRD_EVENTS)).json()["events"][0]
    movie = urlsplit(top["links"]["movie"])
    assert movie.path == f"/tic/{WEIRD_TIC}/movie"
    window = {k: float(v[0]) for k, v in parse_qs(movie.query).items()}
    assert window["start"] < top["start_btjd"] and top["end_btjd"] < window["end"]
    plot = await client.get(top["links"]["plot"])
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    # The diagnosis of the event's own window finds what the tutorial's movie shows: the moving source.
    diagnosis = urlsplit(top["links"]["diagnosis"])
    assert diagnosis.path == f"/tic/{WEIRD_TIC}/diagnosis"
    asked = {k: float(v[0]) for k, v in parse_qs(diagnosis.query).items()}
    assert (asked["start"], asked["end"]) == (top["start_btjd"], top["end_btjd"])
    answer = await client.get(top["links"]["diagnosis"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] == "moving_object"


async def test_parameters_shape_the_answer(client):
    only_one = (await client.get(WEIRD_EVENTS, params={"max_events": 1, "min_snr": 3})).json()
    assert len(only_one["events"]) == 1 and only_one["max_events"] == 1
    many = (await client.get(WEIRD_EVENTS, params={"max_events": 50, "min_snr": 3})).json()
    assert len(many["events"]) > 1
    bumps = (await client.get(WEIRD_EVENTS, params={"kind": "bump", "min_snr": 3})).json()
    assert bumps["kind"] == "bump" and all(e["kind"] == "bump" for e in bumps["events"])
    assert all(abs(e["t0_btjd"] - WEIRD_DIP_BTJD) > 0.2 for e in bumps["events"])
    strict = (await client.get(WEIRD_EVENTS, params={"min_snr": 1000})).json()
    assert strict["events"] == [] and strict["predicted_transits"]["single_event"] is True


@pytest.mark.parametrize(
    "params",
    [{"min_snr": 2}, {"min_snr": "nan"}, {"max_events": 0}, {"max_events": 51}, {"kind": "wiggle"}],
)
async def test_bad_parameters_are_422_problems(client, params):
    response = await client.get(WEIRD_EVENTS, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert next(iter(params)) in response.json()["detail"]


async def test_events_are_cached_with_an_etag(client):
    first = await client.get(WEIRD_EVENTS)
    again = await client.get(WEIRD_EVENTS, headers={"If-None-Match": first.headers["etag"]})
    assert first.headers["x-cache"] == "MISS" and again.status_code == 304
    other = await client.get(WEIRD_EVENTS, params={"max_events": 2, "min_snr": 3})
    assert other.headers["etag"] != first.headers["etag"] and other.json()["max_events"] == 2


@pytest.fixture(scope="module")
def degenerate_mast() -> Iterator[FakeMast]:
    """An emulator whose catalogue adds two copies of the weird target: all flux missing, and two cadences."""
    weird = CATALOGUE[WEIRD_TIC]

    def copy(tic_id, degenerate):
        return dataclasses.replace(weird, star=dataclasses.replace(weird.star, tic_id=tic_id), degenerate=degenerate)

    catalogue = {
        **CATALOGUE,
        ALL_NAN_TIC: copy(ALL_NAN_TIC, "all_nan"),
        TWO_POINT_TIC: copy(TWO_POINT_TIC, "two_points"),
    }
    with FakeMast(host="127.0.0.1", port=0, archive=DvArchive(catalogue)) as running:
        yield running


@pytest.mark.parametrize("tic_id", [ALL_NAN_TIC, TWO_POINT_TIC])
async def test_an_empty_or_tiny_series_has_no_events(make_client, degenerate_mast, tic_id):
    async with make_client(exomast_url=degenerate_mast.exomast_url, mast_url=degenerate_mast.url) as client:
        response = await client.get(f"/tic/{tic_id}/tces/TCE_1/events")
    assert response.status_code == 200
    body = response.json()
    assert body["events"] == []
    assert body["n_points"] <= 2
    assert body["predicted_transits"]["n_with_signal"] == 0 and body["predicted_transits"]["single_event"] is False
