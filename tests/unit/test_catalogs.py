import pytest

from service.errors import BadUpstreamResponse
from service.upstream.catalogs import TicEntry, parse_tic_rows, tic_request


def answer(**row):
    return {"status": "COMPLETE", "data": [{"ID": "42", **row}]}


def test_a_row_becomes_an_entry_and_absent_ids_none():
    assert parse_tic_rows(answer(ra=10.5, dec=-5, Tmag=9.1), 42) == TicEntry(42, 10.5, -5.0, 9.1)
    assert parse_tic_rows(answer(ra=10.5, dec=-5, Tmag=None), 42).tessmag is None
    assert parse_tic_rows({"status": "COMPLETE", "data": []}, 42) is None


@pytest.mark.parametrize(
    "row",
    [
        {"ra": float("nan"), "dec": 0},
        {"ra": 400, "dec": 0},
        {"ra": 10, "dec": 100},
        {"ra": True, "dec": 0},
        {"ra": "10", "dec": 0},
        {"dec": 0},
    ],
)
def test_positions_we_cannot_use_are_bad_upstream_responses(row):
    with pytest.raises(BadUpstreamResponse):
        parse_tic_rows(answer(**row), 42)


@pytest.mark.parametrize("payload", [{"status": "ERROR", "msg": "boom", "data": []}, {"data": "x"}, []])
def test_broken_answers_are_bad_upstream_responses(payload):
    with pytest.raises(BadUpstreamResponse):
        parse_tic_rows(payload, 42)


def test_request_filters_by_id():
    assert '"values":["42"]' in tic_request(42)["request"]
