"""The explorer's Bokeh figures: what the page's script relies on (names, the window event, WebGL), and JSON a
browser can load (each model defined before it is referred to)."""

import json
from typing import Any

import orjson

from service.rendering.explorer_plots import SOURCE_NAMES, WINDOW_EVENT, lightcurve_plot_items
from service.services.explorer import plot_items_json


def models(node: Any) -> list[dict[str, Any]]:
    """Every serialized Bokeh object in ``node``, in document order (definitions and bare references)."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object" or set(node) == {"id"}:
            found.append(node)
        for value in node.values():
            found.extend(models(value))
    elif isinstance(node, (list, tuple)):
        for value in node:
            found.extend(models(value))
    return found


def test_the_figures_carry_the_named_sources_the_page_fills():
    items = lightcurve_plot_items()
    assert set(items) == {"time", "phase"}
    named = {
        view: {m["attributes"]["name"] for m in models(item) if m.get("name") == "ColumnDataSource"}
        for view, item in items.items()
    }
    assert named["time"] == {"lc", "model", "events", "transits", "window"}
    assert named["phase"] == {"phase_lc", "phase_model"}
    assert named["time"] | named["phase"] == set(SOURCE_NAMES)
    for view, name in (("time", "lc_time"), ("phase", "lc_phase")):
        (figure,) = [m for m in models(items[view]) if m.get("name") == "Figure"]
        assert figure["attributes"]["name"] == name
        assert figure["attributes"]["output_backend"] == "webgl"  # 20k points stay responsive


def test_a_width_box_selection_dispatches_the_window_event():
    item = lightcurve_plot_items()["time"]
    tools = [m for m in models(item) if m.get("name") == "BoxSelectTool"]
    assert tools and tools[0]["attributes"]["dimensions"] == "width"
    callbacks = [m["attributes"]["code"] for m in models(item) if m.get("name") == "CustomJS"]
    assert any(WINDOW_EVENT in code and "cb_obj.final" in code for code in callbacks)
    assert "selectiongeometry" in json.dumps(item)


def test_every_model_is_defined_before_it_is_referred_to():
    # BokehJS reads a document in order: a bare {"id": ...} before the model's definition fails to load
    # ("reference isn't known"), which sorted keys (e.g. Jinja's tojson) cause.
    for item in orjson.loads(plot_items_json()).values():
        defined: set[str] = set()
        for model in models(item):
            if set(model) == {"id"}:
                assert model["id"] in defined, model
            else:
                defined.add(model["id"])


def test_the_embedded_json_cannot_close_its_script_element():
    text = plot_items_json()
    assert "<" not in text and ">" not in text and "&" not in text
    assert set(orjson.loads(text)) == {"time", "phase"}
    assert "\\u003c" not in text or "<" in json.dumps(orjson.loads(text))  # escapes stand only for what was there
