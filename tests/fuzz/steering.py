"""Steer generated requests toward the MAST emulator's data, so fuzzing reaches past "unknown TIC" into real work.

Each steered parameter's schema becomes ``anyOf: [{enum: <emulator values>}, <its own schema>]``: every value the
service documents can still be drawn, but about half the draws name a TIC, TCE, position or window the emulator
has. Costly knobs (cutout side, upscale, plot size) are capped for generation only, so a fuzz run stays cheap;
their documented limits are tested one by one in tests/api/test_limits.py.
"""

from __future__ import annotations

import copy
from typing import Any

# TIC 214568914 (the tutorial's "weird" dip, sector 1), TIC 25155310 (WASP-126), TIC 100100827 (WASP-18).
KNOWN_TICS = ["214568914", "00214568914", "25155310", "100100827"]
KNOWN_TCES = ["s0001-s0001:TCE_1", "TCE_1", "1", "s0001-s0003:TCE_1", "TCE_2"]
# Positions the emulator's FFIs cover; `pair_positions` keeps each RA with its own Dec.
KNOWN_POSITIONS = {340.8004: -36.3439, 107.27: -70.0}

# (name, JSON type of the parameter) -> values the emulator has data for.
_STEER: dict[tuple[str, str], list[Any]] = {
    ("tic_id", "string"): KNOWN_TICS,
    ("star_id", "string"): KNOWN_TICS,
    ("tce_id", "string"): KNOWN_TCES,
    ("tce", "string"): ["TCE_1", "1", "s0001-s0001:TCE_1"],
    ("sector", "string"): ["s0001-s0001", "1", "s0001-s0003"],
    ("sector", "integer"): [1],
    ("ra", "number"): list(KNOWN_POSITIONS),
    ("dec", "number"): list(KNOWN_POSITIONS.values()),
    ("start", "number"): [1334.0, 1334.4],
    ("end", "number"): [1334.5, 1335.0],
    ("time", "number"): [1334.45],
}
# (name, JSON type) -> generation-only maximum: the cost of one case, not a limit of the service.
_CAP: dict[tuple[str, str], float] = {
    ("size", "integer"): 12,
    ("scale", "integer"): 4,
    ("width", "integer"): 600,
    ("height", "integer"): 400,
    ("x", "number"): 12,
    ("y", "number"): 12,
}


def _json_type(schema: dict[str, Any]) -> str | None:
    """Return the one non-null JSON type of a parameter schema (plain, or FastAPI's ``anyOf [T, null]``)."""
    for candidate in (schema, *schema.get("anyOf", [])):
        if candidate.get("type") not in (None, "null"):
            return str(candidate["type"])
    return None


def _cap(schema: dict[str, Any], maximum: float) -> dict[str, Any]:
    capped = copy.deepcopy(schema)
    for candidate in (capped, *capped.get("anyOf", [])):
        if candidate.get("type") in ("integer", "number"):
            candidate["maximum"] = min(candidate.get("maximum", maximum), maximum)
    return capped


def _steer_schema(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    key = (name, _json_type(schema) or "")
    if key in _CAP:
        schema = _cap(schema, _CAP[key])
    if key in _STEER:
        schema = {"anyOf": [{"enum": _STEER[key]}, schema]}
    return schema


def steer(openapi: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the OpenAPI document whose parameters (query, path, form) lean toward the emulator's data."""
    steered = copy.deepcopy(openapi)
    for operations in steered["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _steer_schema(parameter["name"], parameter["schema"])
            form = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
            if form is not None:
                properties = form["schema"]["properties"]
                for name, schema in properties.items():
                    properties[name] = _steer_schema(name, schema)
    return steered


def pair_positions(values: dict[str, Any] | None) -> None:
    """Give a steered RA its own Dec (they are drawn independently), so the position is one the emulator covers."""
    if not values:
        return
    ra = values.get("ra")
    if isinstance(ra, float | int) and not isinstance(ra, bool) and ra in KNOWN_POSITIONS and "dec" in values:
        values["dec"] = KNOWN_POSITIONS[ra]
