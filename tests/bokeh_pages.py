"""Reading Bokeh HTML the way a browser gets it: the embedded document, its text, its arrays, the URLs it loads."""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import numpy as np

_DOCUMENT = re.compile(r'<script type="application/json" id="([^"]+)">(.*?)</script>', re.DOTALL)


def bokeh_documents(page: str) -> list[dict[str, Any]]:
    """Return every ``<script type="application/json">`` Bokeh document in ``page``, parsed."""
    return [json.loads(html.unescape(body)) for _, body in _DOCUMENT.findall(page)]


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Yield every JSON object inside ``node``, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def models(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Return the document's models of type ``name`` (each defined once; later references carry only an id)."""
    return [node for node in walk(document) if node.get("type") == "object" and node.get("name") == name]


def texts(document: dict[str, Any]) -> set[str]:
    """Return every string value in the document: labels, titles, legend items."""
    found: set[str] = set()
    for node in walk(document):
        found.update(value for value in node.values() if isinstance(value, str))
    return found


def glyph_columns(document: dict[str, Any], glyph: str) -> dict[str, np.ndarray]:
    """Return the data columns of the one renderer drawing ``glyph`` (e.g. ``Scatter``, ``Line``), decoded."""
    renderers = [r for r in models(document, "GlyphRenderer") if r["attributes"]["glyph"]["name"] == glyph]
    assert len(renderers) == 1, f"{len(renderers)} {glyph} renderers"
    entries = renderers[0]["attributes"]["data_source"]["attributes"]["data"]["entries"]
    return {name: _array(value) for name, value in entries}


def _array(value: dict[str, Any]) -> np.ndarray:
    assert value["type"] == "ndarray" and value["order"] == "little", value.get("type")
    raw = gzip.decompress(base64.b64decode(value["array"]["data"]))  # Bokeh always gzips arrays in HTML
    return np.frombuffer(raw, dtype=np.dtype(value["dtype"]).newbyteorder("<")).reshape(value["shape"])


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls.extend(value for name, value in attrs if name in ("src", "href") and value is not None)


def loaded_urls(page: str) -> list[str]:
    """Return every ``src`` and ``href`` in ``page``, in order."""
    parser = _Urls()
    parser.feed(page)
    return parser.urls


def tags(page: str) -> set[str]:
    """Return the names of the elements ``page`` opens."""
    parser = _Urls()
    parser.feed(page)
    return set(parser.tags)
