"""GPUX's flat inputs and outputs ↔ the model's named inputs and outputs.

The model's input schema says what each input is: a tensor (a JSON array with `x-shape`, the
graph's dimensions, -1 for the batch) or a plain value. A tensor given with one dimension less
than the graph's is one item (the seed's `"input_ids": [101, 1045, …]`): it gets the batch
dimension here, and the outputs lose it again, so one item in is one item out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foretell.errors import InvalidRequest, echo

_SCALARS = ("string", "integer", "number", "boolean")
MAX_ITEMS = 256  # a batch of single values is one prediction per item
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
    # Seed 003's batch tip for inputs that are single values (`{"text": ["a", "b"]}`): one set
    # of inputs per item, run as that many predictions. Empty unless such a list was sent.
    items: list[dict[str, Any]]


def inputs(body: Any, schema: dict[str, Any]) -> Request:
    """The model's named inputs from a GPUX body; InvalidRequest with the seed's texts."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object of named inputs")
    properties: dict[str, Any] = schema.get("properties", {})
    unknown = [name for name in body if name not in properties]
    if unknown:
        known = ", ".join(properties) or "none"
        raise InvalidRequest(
            f"Unknown input: '{echo(unknown[0])}'; the model's inputs are: {known}"
        )
    # What was sent is checked before what is missing: seed 003 answers its own
    # {"input_ids": "not an array"} with the type, not with the absent attention_mask.
    for name, value in body.items():
        if not (properties[name].get("type") in _SCALARS and isinstance(value, list)):
            _check_type(name, value, properties[name])
    for name in schema.get("required", []):
        if name not in body:
            raise InvalidRequest(f"Missing required input: '{name}'")
    named: dict[str, Any] = {}
    ranks: set[bool] = set()
    batched: dict[str, list[Any]] = {}
    for name, value in body.items():
        prop = properties[name]
        expected = prop.get("type")
        if expected in _SCALARS and isinstance(value, list):
            batched[name] = value
            continue
        shape = prop.get("x-shape")
        if shape:
            _check_rectangular(name, value)
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
    return Request(named, one_item=ranks == {True}, items=_items(named, batched, properties))


def _items(
    named: dict[str, Any], batched: dict[str, list[Any]], properties: dict[str, Any]
) -> list[dict[str, Any]]:
    """One set of inputs per item of the batched single values; the others go with each."""
    if not batched:
        return []
    sizes = {len(values) for values in batched.values()}
    if max(sizes) > MAX_ITEMS:
        raise InvalidRequest(
            f"a batch of {max(sizes)} items; at most {MAX_ITEMS} per request, as each is a "
            "prediction of its own"
        )
    if len(sizes) != 1 or 0 in sizes:
        raise InvalidRequest(
            "batched inputs must be non-empty lists of the same length; got "
            + ", ".join(f"'{n}': {len(v)} items" for n, v in batched.items())
        )
    items = []
    for index in range(sizes.pop()):
        item = {**named, **{name: values[index] for name, values in batched.items()}}
        for name, value in item.items():
            _check_type(name, value, properties[name])
        items.append(item)
    return items


def _check_rectangular(name: str, value: Any) -> None:
    """A tensor is a box: no empty dimension, and every row as long as its siblings (a ragged
    list would reach the model only to fail there)."""
    if not isinstance(value, list):
        return
    if not value:
        raise InvalidRequest(f"Invalid input '{name}': an empty array; a tensor needs elements")
    lengths = {len(v) if isinstance(v, list) else -1 for v in value}
    if len(lengths) != 1:
        raise InvalidRequest(
            f"Invalid input '{name}': rows of different lengths; a tensor's rows must all be "
            "as long as each other"
        )
    for row in value:
        _check_rectangular(name, row)


def _check_type(name: str, value: Any, prop: dict[str, Any]) -> None:
    expected = prop.get("type")
    if not isinstance(expected, str) or expected not in _JSON_TYPES:
        return  # a union or an untyped input: the model's own validation decides
    if not isinstance(value, _JSON_TYPES[expected]) or _is_bool_for_number(value, expected):
        raise InvalidRequest(f"Invalid input type for '{name}': expected {expected}")


def batch_outputs(outputs: list[Any]) -> dict[str, Any]:
    """Several items' outputs as one flat object: each named output a list, item by item."""
    if outputs and all(isinstance(o, dict) for o in outputs):
        names = list(dict.fromkeys(k for o in outputs for k in o))
        return {name: [o.get(name) for o in outputs] for name in names}
    return {"output": outputs}


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
