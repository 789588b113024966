"""Cache identity and body shape come from a product's declaration (service.services.identity)."""

from dataclasses import dataclass

import orjson
import pytest
from pydantic import BaseModel, Field, ValidationError

from service.schemas import TceList
from service.services.dv import TCE_LIST
from service.services.identity import Product, canonical, data_key


def make_a(x):
    return x + 1


def make_b(x):
    return x + 2


class Small(BaseModel):
    n: int
    ratio: float | None = Field(None)


class SmallWithNote(BaseModel):
    n: int
    ratio: float | None = Field(None)
    note: str | None = None


@dataclass(frozen=True)
class Window:
    start: float | None
    end: float | None


class Columns:
    def __init__(self, names):
        self.names = names

    def key_parts(self):
        return (",".join(sorted(n.upper() for n in self.names)),)


def test_a_change_in_the_makers_or_the_schema_changes_the_key():
    plain = Product("p", ("image/png",), (make_a,))
    assert plain.key(1) == Product("p", ("image/png",), (make_a,)).key(1)
    assert plain.key(1) != Product("p", ("image/png",), (make_b,)).key(1)
    assert Product("j", ("application/json",), (), Small).key(1) != Product(
        "j", ("application/json",), (), SmallWithNote
    ).key(1)
    assert plain.key(1) != Product("p", ("image/png",), (make_a,), revision="2").key(1)
    assert plain.key(1) != plain.key(2)


def test_equal_inputs_give_equal_keys():
    product = Product("p", ("image/png",), (make_a,))
    assert canonical(-0.0) == canonical(0.0)
    assert product.key(Window(-0.0, None)) == product.key(Window(0.0, None))
    assert product.key(Window(1.0, None)) != product.key(Window(None, 1.0))
    assert product.key(Columns(["time", "FLUX"])) == product.key(Columns(["FLUX", "TIME"]))
    assert data_key("exomast:table", 1, "TCE_1") != data_key("exomast:table", 1, "TCE_2")


def test_json_body_is_the_document_itself_when_it_fits_the_model():
    product = Product("j", ("application/json",), (), Small)
    document = {"n": 3, "ratio": 2}
    # Written as given: the int 2 is not turned into 2.0 by the model's float field.
    assert product.json_body(document) == orjson.dumps(document) == b'{"n":3,"ratio":2}'
    assert product.json_body(b'{"n":3}') == b'{"n":3}'


@pytest.mark.parametrize(
    "document",
    [{"n": "three"}, {"ratio": 1.0}, {"n": 1, "undocumented": True}, b'{"n":1,"extra":2}', b'{"n":"x"}'],
)
def test_json_body_refuses_a_body_that_does_not_fit_its_model(document):
    with pytest.raises(ValidationError):
        Product("j", ("application/json",), (), Small).json_body(document)


def test_a_product_without_a_model_cannot_build_a_json_body():
    with pytest.raises(TypeError, match="no response model"):
        Product("p", ("image/png",), (make_a,)).json_body({"n": 1})


def test_tce_list_bodies_fit_the_documented_model():
    tce = {"id": "s0001-s0001:TCE_1", "sectors": "s0001-s0001", "first_sector": 1, "last_sector": 1}
    body = TCE_LIST.json_body({"tic_id": 1, "tces": [{**tce, "tce": "TCE_1", "number": 1}]})
    assert TceList.model_validate_json(body).tces[0].number == 1
    with pytest.raises(ValidationError):
        TCE_LIST.json_body({"tic_id": 1, "tces": [tce]})  # no tce, no number
