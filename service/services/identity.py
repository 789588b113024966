"""Cache identity: every cache key the service writes is built here, from a product's declaration.

A key is ``<kind>:<name>:<revision>.<fingerprint>:<inputs...>``. The fingerprint hashes the source of the code
that shapes the bytes (the renderer modules a product names) and the JSON schema of its response model, so
changing a renderer or a schema changes the key by construction: old entries are simply never found again and age
out. ``revision`` is for what no fingerprint sees (a library upgrade that changes output): bump it by hand.

A JSON product's body is checked against that same response model as it is made (`Product.json_body`), once per
cache miss: the schema the OpenAPI document shows is the shape every served body has, not documentation only.

Upstream data (what MAST said, normalised) is keyed by `data_key`: its encoding lives with the code that decodes
it, and a change there bumps `DATA_REVISION`.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field, is_dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

# Bump when the encoding of cached upstream data changes, so old entries are never decoded.
DATA_REVISION = "v1"
FINGERPRINT_CHARS = 10


def fingerprint(makers: tuple[ModuleType | type | Any, ...], schema: type[BaseModel] | None) -> str:
    """Return a short hash of the makers' source code and the schema's JSON schema."""
    digest = hashlib.sha256()
    for maker in makers:
        digest.update(inspect.getsource(maker).encode())
    if schema is not None:
        digest.update(orjson.dumps(schema.model_json_schema(), option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def canonical(part: object) -> str:
    """Return one key part as text: equal inputs give equal text (-0.0 is 0.0, dataclasses by their fields)."""
    if isinstance(part, float):
        return repr(part + 0.0) if math.isfinite(part) else repr(part)
    if part is None:
        return "*"
    if isinstance(part, tuple):
        return ",".join(map(canonical, part))
    if is_dataclass(part) and not isinstance(part, type):
        return canonical(astuple(part))
    return str(part)


@dataclass(frozen=True)
class Product:
    """The declaration of one product: its name, the code and schema that shape its bytes, its media types.

    ``makers`` are the modules (or functions) whose source makes the bytes; ``schema`` the response model the body
    is built from, if any. Both go into `identity`; so does ``revision``.
    """

    name: str
    media_types: tuple[str, ...]
    makers: tuple[ModuleType | type | Any, ...] = ()
    schema: type[BaseModel] | None = None
    revision: str = "1"
    kind: str = field(default="resp")

    @cached_property
    def identity(self) -> str:
        """Return the key prefix: kind, name, revision and fingerprint."""
        return f"{self.kind}:{self.name}:{self.revision}.{fingerprint(self.makers, self.schema)}"

    def key(self, *parts: object) -> str:
        """Return the cache key of this product for these inputs."""
        return ":".join((self.identity, *map(canonical, _expanded(parts))))

    def json_body(self, document: Mapping[str, Any] | bytes) -> bytes:
        """Return a body of this product, made to its response model: raise when it does not fit.

        A document is validated against the model (no key it does not declare, every field of its type) and
        written by orjson as it is, so the bytes do not depend on pydantic's coercions (an int stays an int);
        bytes already written by a fast encoder are parsed by the model instead. A body that does not fit is our
        bug, answered 500 and logged, never cached.
        """
        model = self._checked_model
        if isinstance(document, bytes):
            model.model_validate_json(document)
            return document
        model.model_validate(document)
        return orjson.dumps(document)

    @cached_property
    def _checked_model(self) -> type[BaseModel]:
        """Return the response model, refusing keys it does not declare (the documented model lets them pass)."""
        if self.schema is None:
            raise TypeError(f"Product {self.name!r} declares no response model to build its body from.")
        return type(self.schema.__name__, (self.schema,), {"model_config": ConfigDict(extra="forbid")})


def _expanded(parts: tuple[object, ...]) -> list[object]:
    """Return ``parts`` with each input that normalises itself (a ``key_parts()`` method) replaced by its parts."""
    out: list[object] = []
    for part in parts:
        key_parts = getattr(part, "key_parts", None)
        out.extend(key_parts() if callable(key_parts) else (part,))
    return out


def data_key(source: str, *parts: object) -> str:
    """Return the key of cached upstream data (e.g. ``data_key("exomast:table", tic, tce)``)."""
    return ":".join((DATA_REVISION, source, *map(canonical, parts)))
