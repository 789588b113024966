import pytest

from service.api.negotiation import negotiate
from service.errors import NotAcceptable

OFFERS = {"json": "application/json", "csv": "text/csv", "fits": "application/fits"}


@pytest.mark.parametrize(
    ("explicit", "accept", "chosen"),
    [
        ("csv", "application/json", "csv"),
        (None, None, "json"),
        (None, "*/*", "json"),
        (None, "text/csv", "csv"),
        (None, "application/fits", "fits"),
        (None, "text/*", "csv"),
        (None, "text/csv;q=0.5, application/fits", "fits"),
        (None, "application/json;q=0, text/csv;q=0.1", "csv"),
        (None, "text/html, */*;q=0.1", "json"),
        (None, "TEXT/CSV", "csv"),
    ],
)
def test_negotiate(explicit, accept, chosen):
    assert negotiate(explicit, accept, OFFERS) == chosen


def test_nothing_acceptable_is_406():
    with pytest.raises(NotAcceptable):
        negotiate(None, "image/png, text/html;q=0.5", OFFERS)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("application/json;q=0, */*", "csv"),
        ("application/json;q=nan, text/csv;q=0.2", "csv"),
        ("application/*;q=0.3, text/csv;q=0.2", "json"),
        ("*/*;q=0.1, application/fits;q=0.5", "fits"),
    ],
)
def test_the_most_specific_range_decides(accept, chosen):
    assert negotiate(None, accept, OFFERS) == chosen


def test_an_explicit_refusal_beats_a_wildcard():
    with pytest.raises(NotAcceptable):
        negotiate(None, "application/json;q=0, text/csv;q=0, application/fits;q=0, */*;q=0.5", OFFERS)
