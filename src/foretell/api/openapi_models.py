"""The OpenAPI document with the models it serves: each version's input as a component schema,
and on POST /v1/predictions an example body per model, so /docs shows what to send to each.

FastAPI's document is built once (its routes never change); the models are laid over a shallow
copy of it, and only again when what they show changed (`Described.document`)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from foretell.service import ModelView, VersionView

CREATE = "/v1/predictions"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")  # what a component's name may not hold
_DEPTH = 8  # a recursive schema's example stops here
# A file input's example: a data URI, which needs no network and names no server file.
_FILE = "data:text/plain;base64,aGVsbG8="
_FILE_FORMATS = frozenset({"uri", "binary", "path", "file-path"})

Shown = tuple[tuple[str, int, str, bool, object], ...]


def shown(models: Iterable[ModelView]) -> Shown:
    """What of `models` the document shows: compare two to know whether it must change. Cheap:
    a version's signature is its own object, so an unchanged one compares by identity."""
    return tuple(
        (v.slug, v.number, v.description, v.ready, v.signature) for m in models for v in m.versions
    )


def component_name(version: VersionView) -> str:
    """`owner.name.vN.input`, the name of its input schema under components/schemas."""
    return _UNSAFE.sub("_", f"{version.owner}.{version.name}.v{version.number}.input")


def with_models(base: dict[str, Any], models: Sequence[ModelView]) -> bytes:
    """`base` (left as it is) with the input schema of every version of `models` that has
    one and an example body for each model, as JSON."""
    schemas: dict[str, Any] = {}
    examples: dict[str, Any] = {}
    for model in models:
        described = [v for v in model.versions if v.signature is not None]
        for version in described:
            assert version.signature is not None
            name = component_name(version)
            schemas |= _hoisted(name, version.signature.input_schema, f"{version.ref} input")
        if described:
            examples[f"{model.owner}/{model.name}"] = _example(model, described)
    if not schemas:
        return orjson.dumps(base)
    components = base.get("components", {})
    document = {
        **base,
        "components": {**components, "schemas": {**components.get("schemas", {}), **schemas}},
    }
    create = base.get("paths", {}).get(CREATE, {}).get("post")
    if create is not None and "requestBody" in create:
        body = create["requestBody"]
        content = body["content"]["application/json"]
        post = {
            **create,
            "requestBody": {
                **body,
                "content": {
                    **body["content"],
                    "application/json": {**content, "examples": examples},
                },
            },
        }
        document["paths"] = {**base["paths"], CREATE: {**base["paths"][CREATE], "post": post}}
    return orjson.dumps(document)


def _example(model: ModelView, described: list[VersionView]) -> dict[str, Any]:
    """The body that runs the version a plain `owner/name` runs (the latest ready one)."""
    ready = [v for v in described if v.ready]
    version = (ready or described)[-1]
    assert version.signature is not None
    slug = f"{model.owner}/{model.name}"
    summary = f"{slug} (version {version.number})"
    if version.description:
        summary += f": {version.description.strip().splitlines()[0]}"
    return {
        "summary": summary,
        "description": f"Input schema: #/components/schemas/{component_name(version)}",
        "value": {"model": slug, "input": example_input(version.signature.input_schema)},
    }


def example_input(schema: dict[str, Any]) -> dict[str, Any]:
    """An input for `schema`: its required fields and those with a default, each from the
    schema's own examples or default where it has one, else the least value its limits take."""
    found = _value(schema, schema.get("$defs", {}), 0)
    return found if isinstance(found, dict) else {}


def _value(node: Any, defs: dict[str, Any], depth: int) -> Any:
    if not isinstance(node, dict) or depth > _DEPTH:
        return None
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _value(defs.get(ref.removeprefix("#/$defs/")), defs, depth + 1)
    if isinstance(node.get("examples"), list) and node["examples"]:
        return node["examples"][0]
    for key in ("example", "default", "const"):
        if key in node:
            return node[key]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(node.get(key), list) and node[key]:
            return _value(node[key][0], defs, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in node:
        return _object(node, defs, depth)
    if kind == "array":
        item = _value(node.get("items"), defs, depth + 1)
        return [item] * max(1, node.get("minItems", 1)) if item is not None else []
    if kind == "string":
        if node.get("format") in _FILE_FORMATS:
            return _FILE
        shortest, longest = node.get("minLength", 0), node.get("maxLength")
        text = "text" * max(1, math.ceil(shortest / 4))
        return text if longest is None else text[: max(shortest, longest)]
    if kind in ("integer", "number"):
        return _number(node, integer=kind == "integer")
    if kind == "boolean":
        return False
    return None


def _object(node: dict[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    required = set(node.get("required", ()))
    found = {}
    for name, field in node.get("properties", {}).items():
        if name in required or (isinstance(field, dict) and "default" in field):
            found[name] = _value(field, defs, depth + 1)
    return found


def _number(node: dict[str, Any], *, integer: bool) -> float | int:
    low = _bound(node, "minimum", "exclusiveMinimum", 1.0)
    high = _bound(node, "maximum", "exclusiveMaximum", -1.0)
    if integer:
        return math.ceil(low) if low is not None else (math.floor(high) if high is not None else 0)
    if low is not None and high is not None:
        return (low + high) / 2  # each moved by 1 the same way: the middle is inside either way
    return low if low is not None else (high if high is not None else 0)


def _bound(node: dict[str, Any], inclusive: str, exclusive: str, step: float) -> float | None:
    """A limit as a value within it: an inclusive one itself, an exclusive one `step` inside."""
    for key, moved in ((inclusive, 0.0), (exclusive, step)):
        value = node.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) + moved
    return None


def _hoisted(name: str, schema: dict[str, Any], title: str) -> dict[str, Any]:
    """`schema` as components named `name` (and `name.Def` for each of its $defs): a `#/$defs`
    reference means nothing at the root of an OpenAPI document."""
    defs = schema.get("$defs", {})
    found = {name: {**_moved(name, schema), "title": title}}
    for key, definition in defs.items():
        found[_UNSAFE.sub("_", f"{name}.{key}")] = _moved(name, definition)
    return found


def _moved(name: str, node: Any) -> Any:
    if isinstance(node, dict):
        moved = {k: _moved(name, v) for k, v in node.items() if k != "$defs"}
        ref = node.get("$ref")
        if ref == "#":
            moved["$ref"] = f"#/components/schemas/{name}"
        elif isinstance(ref, str) and ref.startswith("#/$defs/"):
            key = _UNSAFE.sub("_", f"{name}.{ref.removeprefix('#/$defs/')}")
            moved["$ref"] = f"#/components/schemas/{key}"
        return moved
    if isinstance(node, list):
        return [_moved(name, v) for v in node]
    return node
