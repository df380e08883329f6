"""A model's inputs and outputs as the protocol's tensors (name, datatype, shape), read from its
JSON Schemas.

An ONNX model's properties say it outright (`x-dtype`, `x-shape`). Any other property is read
from its JSON Schema: each level of `array` is a dimension (fixed where minItems = maxItems, else
-1), and the leaf type gives the datatype (boolean BOOL, integer INT64, number FP64, string
BYTES; an object or anything else BYTES, each element a JSON text). A property that is one value
(`text: str`) is a tensor of shape [1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foretell.api.dialects.oip_v2.datatypes import BY_JSON_TYPE, BY_X_DTYPE

ANY_DATATYPE: frozenset[str] = frozenset()  # `accepts` of a leaf the schema does not type
_UNTYPED = ("BYTES", ANY_DATATYPE)
OUTPUT = "output"  # the one output tensor of a model whose output is not an object


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str  # what metadata advertises
    shape: tuple[int, ...]  # -1: any size
    accepts: frozenset[str]  # datatypes taken as input; empty: any
    scalar: bool  # the model takes one bare value, sent as shape [1]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


# A model's schemas are built once, when it loads, and read on every inference: their specs
# are kept by the schema's identity (the entry holds the schema, so its id is not reused).
_CACHE_SIZE = 256
_inputs: dict[int, tuple[dict[str, Any], dict[str, TensorSpec]]] = {}
_outputs: dict[int, tuple[dict[str, Any], dict[str, TensorSpec] | None]] = {}


def inputs(schema: dict[str, Any]) -> dict[str, TensorSpec]:
    """By name; shared between calls with the same schema, so read only."""
    hit = _inputs.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    properties: dict[str, Any] = schema.get("properties") or {}
    found = {name: spec(name, prop) for name, prop in properties.items()}
    if len(_inputs) >= _CACHE_SIZE:
        _inputs.clear()
    _inputs[id(schema)] = (schema, found)
    return found


def outputs(schema: dict[str, Any]) -> dict[str, TensorSpec] | None:
    """By name; None where the names are known only once it ran (an object of any keys).
    Shared between calls with the same schema, so read only."""
    hit = _outputs.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    found = _output_specs(schema)
    if len(_outputs) >= _CACHE_SIZE:
        _outputs.clear()
    _outputs[id(schema)] = (schema, found)
    return found


def _output_specs(schema: dict[str, Any]) -> dict[str, TensorSpec] | None:
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        return {name: spec(name, prop) for name, prop in properties.items()}
    if _unwrap(schema).get("type") == "object":
        return None
    return {OUTPUT: spec(OUTPUT, schema)}


def spec(name: str, prop: dict[str, Any]) -> TensorSpec:
    x_dtype = prop.get("x-dtype")
    if isinstance(x_dtype, str) and x_dtype in BY_X_DTYPE:
        datatype = BY_X_DTYPE[x_dtype]
        shape = tuple(prop.get("x-shape", ()))
        return TensorSpec(name, datatype, shape, frozenset({datatype}), scalar=False)
    dims: list[int] = []
    node = _unwrap(prop)
    while node.get("type") == "array":
        dims.append(_dimension(node))
        node = _unwrap(node.get("items") or {})
    leaf = node.get("type")
    datatype, accepts = BY_JSON_TYPE.get(leaf if isinstance(leaf, str) else "", _UNTYPED)
    return TensorSpec(name, datatype, tuple(dims) or (1,), accepts, scalar=not dims)


def _unwrap(node: dict[str, Any]) -> dict[str, Any]:
    """An optional value's schema (`anyOf: [X, null]`, as pydantic writes one) → X."""
    for option in node.get("anyOf", ()):
        if isinstance(option, dict) and option.get("type") != "null":
            return option
    return node


def _dimension(array: dict[str, Any]) -> int:
    size = array.get("maxItems")
    return size if isinstance(size, int) and array.get("minItems") == size else -1
