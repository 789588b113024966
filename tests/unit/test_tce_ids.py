import pytest

from service.errors import Conflict, InvalidRequest, NotFound
from service.tces import TceRef, parse_tce_id, resolve_tce

REFS = [TceRef(1, 3, 1), TceRef(2, 2, 1), TceRef(1, 1, 1), TceRef(1, 3, 2)]


def test_parse_full_id_round_trips():
    ref = parse_tce_id("s0001-s0003:TCE_2")
    assert ref == TceRef(1, 3, 2)
    assert (ref.id, ref.sectors, ref.tce) == ("s0001-s0003:TCE_2", "s0001-s0003", "TCE_2")


@pytest.mark.parametrize("raw", ["TCE_1", "s0001:TCE_1", "s0001-s0001", "", "s0001-s0001:TCE_x"])
def test_parse_rejects_what_is_not_a_full_id(raw):
    assert parse_tce_id(raw) is None


def test_sorting_is_by_sector_range_then_number():
    assert [r.id for r in sorted(REFS)] == [
        "s0001-s0001:TCE_1",
        "s0001-s0003:TCE_1",
        "s0001-s0003:TCE_2",
        "s0002-s0002:TCE_1",
    ]


@pytest.mark.parametrize("requested", ["TCE_2", "tce_2", "2", "s0001-s0003:tce_2", "S0001-S0003:TCE_2"])
def test_resolve_accepts_short_and_case_insensitive_forms(requested):
    assert resolve_tce(REFS, requested, 1) == TceRef(1, 3, 2)


def test_resolve_ambiguous_lists_candidates():
    with pytest.raises(Conflict) as caught:
        resolve_tce(REFS, "TCE_1", 100100827)
    assert caught.value.extensions["candidates"] == ["s0001-s0001:TCE_1", "s0001-s0003:TCE_1", "s0002-s0002:TCE_1"]


def test_resolve_unknown_and_invalid():
    with pytest.raises(NotFound):
        resolve_tce(REFS, "TCE_9", 1)
    with pytest.raises(NotFound):
        resolve_tce(REFS, "s0004-s0004:TCE_1", 1)
    with pytest.raises(InvalidRequest):
        resolve_tce(REFS, "planet b", 1)
