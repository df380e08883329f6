"""A model's example input follows its schema's own values and limits; its $defs become
components that every reference reaches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from foretell.api.openapi_models import example_input, with_models
from foretell.domain import DeploymentStatus
from foretell.manifest import Signature
from foretell.service import ModelView, VersionView


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ({"type": "integer", "minimum": 3, "maximum": 9}, 3),
        ({"type": "integer", "exclusiveMinimum": 3}, 4),
        ({"type": "integer", "maximum": -2}, -2),
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, 0.5),
        ({"type": "number", "minimum": 2}, 2.0),
        ({"type": "number"}, 0),
        ({"type": "string", "minLength": 6}, "texttext"),
        ({"type": "string", "maxLength": 2}, "te"),
        ({"type": "string", "format": "uri"}, "data:text/plain;base64,aGVsbG8="),
        ({"type": "string", "enum": ["b", "a"]}, "b"),
        ({"type": "string", "examples": ["hi"], "default": "x"}, "hi"),
        ({"type": "integer", "enum": [1, 2, 3], "default": 2}, 2),
        ({"type": "boolean"}, False),
        ({"type": ["null", "integer"], "minimum": 1}, 1),
        ({"anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string"}]}, [0]),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 3}, [0, 0, 0]),
        ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"a": 0}),
    ],
)
def test_a_required_field_takes_what_its_schema_allows(field: dict[str, Any], value: Any) -> None:
    schema = {"type": "object", "properties": {"x": field}, "required": ["x"]}

    assert example_input(schema) == {"x": value}


def test_optional_fields_appear_only_with_a_default() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer", "default": 7}, "b": {"type": "string"}},
    }

    assert example_input(schema) == {"a": 7}


def test_a_recursive_schema_ends() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/Node"}},
        "required": ["node"],
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/Node"}},
                "required": ["child"],
            }
        },
    }

    found = example_input(schema)

    depth = 0
    node: Any = found["node"]
    while isinstance(node, dict):
        node, depth = node["child"], depth + 1
    assert 1 < depth < 10


NOW = datetime.now(UTC)


def version(owner: str, name: str, number: int, schema: dict[str, Any]) -> VersionView:
    return VersionView(
        owner=owner,
        name=name,
        number=number,
        deployment_id=f"d{number}",
        status=DeploymentStatus.READY,
        created_at=NOW,
        updated_at=NOW,
        signature=Signature(input_schema=schema, output_schema={}),
    )


def test_defs_become_components_that_every_reference_reaches() -> None:
    schema = {
        "type": "object",
        "properties": {"point": {"$ref": "#/$defs/Point"}, "self": {"$ref": "#"}},
        "required": ["point"],
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    }
    view = version("acme", "geo", 3, schema)
    base = {"openapi": "3.1.0", "paths": {}, "components": {"schemas": {"Other": {}}}}

    document = orjson.loads(with_models(base, [ModelView("acme", "geo", "acme-geo", (view,))]))

    schemas = document["components"]["schemas"]
    assert set(schemas) == {"Other", "acme.geo.v3.input", "acme.geo.v3.input.Point"}
    properties = schemas["acme.geo.v3.input"]["properties"]
    assert properties["point"]["$ref"] == "#/components/schemas/acme.geo.v3.input.Point"
    assert properties["self"]["$ref"] == "#/components/schemas/acme.geo.v3.input"
    assert "$defs" not in schemas["acme.geo.v3.input"]
    assert base["components"]["schemas"] == {"Other": {}}  # the base is left as it was
