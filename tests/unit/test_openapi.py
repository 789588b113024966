"""The committed OpenAPI document matches the app, and documents every route, parameter and response."""

import json

import pytest

from scripts.export_openapi import TARGET, render_openapi
from service.main import create_app

SPEC = create_app().openapi()
OPERATIONS = [
    (path, method, operation)
    for path, methods in SPEC["paths"].items()
    for method, operation in methods.items()
    if method in ("get", "post", "put", "delete", "patch")
]


def test_committed_openapi_matches_the_app():
    committed = json.loads(TARGET.read_text(encoding="utf-8"))
    assert committed == json.loads(render_openapi()), "openapi/openapi.json drifted: run `make openapi`"


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_operation_is_documented(path, method, operation):
    assert operation.get("summary") and operation.get("description")
    for parameter in operation.get("parameters", []):
        assert parameter.get("description"), f"{parameter['name']} has no description"
        assert parameter.get("examples") or parameter.get("example"), f"{parameter['name']} has no example"
    for status, response in operation["responses"].items():
        assert response.get("description"), f"{status} has no description"
        for media_type, content in response.get("content", {}).items():
            schema = content.get("schema", {})
            has_example = "example" in content or "examples" in content
            if "$ref" in schema:
                name = schema["$ref"].rsplit("/", 1)[-1]
                has_example = has_example or "examples" in SPEC["components"]["schemas"][name]
            binary = schema.get("format") == "binary"
            assert has_example or binary, f"{status} {media_type} has no example"


def test_every_error_response_is_problem_json():
    for _, _, operation in OPERATIONS:
        # Mirrors answer client errors the way the upstream they mirror does; their 5xx stay problem documents.
        mirror = any(tag.endswith(" mirror") for tag in operation.get("tags", []))
        for status, response in operation["responses"].items():
            if int(status) >= 500 or (int(status) >= 400 and not mirror):
                assert list(response["content"]) == ["application/problem+json"]
