"""A model's inputs and outputs as the protocol's tensors (name, datatype, shape), read from its
JSON Schemas.

An ONNX model's properties say it outright (`x-dtype`, `x-shape`). Any other property is read
from its JSON Schema: each level of `array` is a dimension (fixed where minItems = maxItems, else
-1), and the leaf type gives the datatype (boolean BOOL, integer INT64, number FP64, string
BYTES; an object or anything else BYTES, each element a JSON text). A property that is one value
(`text: str`) is a tensor of shape [1]. A file (a string of `format: uri`, as a python model's
`Path` shows) is a BYTES element: the file's bytes when sent as binary data, else a reference to
it (URL, data: URI, uploaded file). A union (`anyOf`) is advertised as its first choice that is
not null and accepts the others' tensors too (demo/digits-image: an FP32/FP64 array or a file)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from foretell.api.dialects.oip_v2.datatypes import BY_JSON_TYPE, BY_X_DTYPE
from foretell.manifest.file_fields import FILE_FORMATS

ANY_DATATYPE: frozenset[str] = frozenset()  # `accepts` of a leaf the schema does not type
_UNTYPED = ("BYTES", ANY_DATATYPE)
_FILE = frozenset({"BYTES"})
OUTPUT = "output"  # the one output tensor of a model whose output is not an object


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str  # what metadata advertises
    shape: tuple[int, ...]  # -1: any size
    accepts: frozenset[str]  # datatypes taken as input; empty: any
    scalar: bool  # the model takes one bare value, sent as shape [1]
    file: bool = False  # each element is a file: BYTES sent as binary data are its bytes
    others: tuple[TensorSpec, ...] = ()  # a union's other choices, tried in order

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def taking(self, datatype: str) -> TensorSpec:
        """The choice of this union that takes `datatype` (itself when none does: its own
        error then names what it expects)."""
        for choice in (self, *self.others):
            if not choice.accepts or datatype in choice.accepts:
                return choice
        return self

    @property
    def takes_files(self) -> bool:
        return any(choice.file for choice in (self, *self.others))


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


def file_inputs(schema: dict[str, Any]) -> frozenset[str]:
    """The inputs that take files: their BYTES binary data are the files' bytes, kept as such."""
    return frozenset(name for name, found in inputs(schema).items() if found.takes_files)


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
    first, *others = _choices(prop) or [prop]
    found = _spec(name, first)
    if not others:
        return found
    return dataclasses.replace(found, others=tuple(_spec(name, o) for o in others))


def _spec(name: str, node: dict[str, Any]) -> TensorSpec:
    dims: list[int] = []
    while node.get("type") == "array":
        dims.append(_dimension(node))
        node = _unwrap(node.get("items") or {})
    if node.get("format") in FILE_FORMATS:
        return TensorSpec(name, "BYTES", tuple(dims) or (1,), _FILE, scalar=not dims, file=True)
    leaf = node.get("type")
    datatype, accepts = BY_JSON_TYPE.get(leaf if isinstance(leaf, str) else "", _UNTYPED)
    return TensorSpec(name, datatype, tuple(dims) or (1,), accepts, scalar=not dims)


def _choices(node: dict[str, Any]) -> list[dict[str, Any]]:
    """A union's choices that are not null (`anyOf: [X, null]` is an optional X)."""
    options = node.get("anyOf", ())
    return [o for o in options if isinstance(o, dict) and o.get("type") != "null"]


def _unwrap(node: dict[str, Any]) -> dict[str, Any]:
    """An optional value's schema (`anyOf: [X, null]`, as pydantic writes one) → X."""
    choices = _choices(node)
    return choices[0] if choices else node


def _dimension(array: dict[str, Any]) -> int:
    size = array.get("maxItems")
    return size if isinstance(size, int) and array.get("minItems") == size else -1
