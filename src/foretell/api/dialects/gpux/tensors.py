"""GPUX's flat inputs and outputs ↔ the model's named inputs and outputs.

The model's input schema says what each input is: a tensor (a JSON array with `x-shape`, the
graph's dimensions, -1 for the batch) or a plain value. A tensor given with one dimension less
than the graph's is one item (the seed's `"input_ids": [101, 1045, …]`): it gets the batch
dimension here, and the outputs lose it again, so one item in is one item out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foretell.errors import InvalidRequest

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
}


@dataclass(frozen=True, slots=True)
class Request:
    inputs: dict[str, Any]
    one_item: bool  # the caller sent tensors without their batch dimension


def inputs(body: Any, schema: dict[str, Any]) -> Request:
    """The model's named inputs from a GPUX body; InvalidRequest with the seed's texts."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object of named inputs")
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in body:
            raise InvalidRequest(f"Missing required input: '{name}'")
    unknown = [name for name in body if name not in properties]
    if unknown:
        known = ", ".join(properties) or "none"
        raise InvalidRequest(f"Unknown input: '{unknown[0]}'; the model's inputs are: {known}")
    named: dict[str, Any] = {}
    ranks: set[bool] = set()
    for name, value in body.items():
        prop = properties[name]
        expected = prop.get("type")
        python_type = _JSON_TYPES.get(expected) if isinstance(expected, str) else None
        if python_type is not None and (
            not isinstance(value, python_type) or _is_bool_for_number(value, expected)
        ):
            raise InvalidRequest(f"Invalid input type for '{name}': expected {expected}")
        shape = prop.get("x-shape")
        if shape and shape[0] == -1 and _depth(value) == len(shape) - 1:
            named[name] = [value]
            ranks.add(True)
        else:
            named[name] = value
            if shape:
                ranks.add(False)
    if len(ranks) > 1:
        raise InvalidRequest(
            "inputs disagree: some are one item (no batch dimension), some a batch of items; "
            "give all of them the same way"
        )
    return Request(named, one_item=ranks == {True})


def outputs(output: Any, schema: dict[str, Any], *, one_item: bool) -> dict[str, Any]:
    """The flat JSON of named outputs; one item's, without the batch dimension, if one_item."""
    if not isinstance(output, dict):
        return {"output": output}
    if not one_item:
        return output
    properties = schema.get("properties", {})
    return {
        name: value[0] if _batched(properties.get(name, {})) and isinstance(value, list) else value
        for name, value in output.items()
    }


def _batched(prop: dict[str, Any]) -> bool:
    shape = prop.get("x-shape")
    return isinstance(shape, list) and bool(shape) and shape[0] == -1


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    return depth


def _is_bool_for_number(value: Any, expected: str) -> bool:
    # JSON true is not a number, though Python's bool is an int.
    return isinstance(value, bool) and expected in ("integer", "number")
