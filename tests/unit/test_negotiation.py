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
