"""Request tensors → the model's named input; the model's output → response tensors.

An input tensor becomes the property of its name: its data (flat or nested; only the count of
elements matters) reshaped to its `shape` as nested lists, or the one element itself where the
model takes one value. An output becomes one tensor per property (one named `output` when it is
not an object), flattened row-major with its shape: nested lists as deep as they are regular,
a lone value shape [1]; elements that are not scalars go as JSON texts in a BYTES tensor.
A file input's BYTES elements sent as binary data (the bytes of a PNG, say) become `data:` URIs,
so the record holds them and the prediction path resolves them as any file input; its text
elements are references to files (a URL, a data: URI, an uploaded file's id) as they are. A
file output, its URL, is a BYTES element like any string."""

from __future__ import annotations

import math
from base64 import b64encode
from collections.abc import Sequence
from itertools import chain
from typing import Any

import orjson

from foretell.api.dialects.oip_v2 import specs
from foretell.api.dialects.oip_v2.datatypes import DATATYPES, infer, unknown
from foretell.api.dialects.oip_v2.schemas import RequestInput
from foretell.api.dialects.oip_v2.specs import TensorSpec
from foretell.errors import InvalidRequest

_LIST = {list}
# A file's bytes as an input's value; the prediction path tells its type from the bytes.
_DATA_URI = "data:application/octet-stream;base64,"


def model_input(
    model: str,
    tensors: list[RequestInput],
    binary: dict[str, list[Any]],
    schema: dict[str, Any],
) -> dict[str, Any]:
    """The input of `model` (named in messages), from the request's tensors and any binary
    data; InvalidRequest naming the tensor and what is wrong with it."""
    expected = specs.inputs(schema)
    named: dict[str, Any] = {}
    for tensor in tensors:
        if tensor.name in named:
            raise InvalidRequest(f"input '{tensor.name}' is given twice")
        spec = expected.get(tensor.name)
        if spec is None:
            raise InvalidRequest(
                f"model '{model}' has no input '{tensor.name}'; its inputs: {_names(expected)}"
            )
        flat = binary.get(tensor.name)
        named[tensor.name] = _value(model, tensor, spec, _flatten(tensor) if flat is None else flat)
    missing = [name for name in schema.get("required", ()) if name not in named]
    if missing:
        raise InvalidRequest(
            f"input '{missing[0]}' is missing; model '{model}' needs: "
            f"{', '.join(schema.get('required', ()))}"
        )
    return named


def _value(model: str, tensor: RequestInput, spec: TensorSpec, flat: list[Any]) -> Any:
    name, shape = tensor.name, tensor.shape
    datatype = DATATYPES.get(tensor.datatype)
    if datatype is None:
        raise InvalidRequest(f"input '{name}': {unknown(tensor.datatype)}")
    union, spec = spec, spec.taking(datatype.name)
    if spec.accepts and datatype.name not in spec.accepts:
        accepts = frozenset().union(*(c.accepts for c in (union, *union.others)))
        wanted = spec.datatype if len(accepts) == 1 else f"one of {_sorted(accepts)}"
        raise InvalidRequest(
            f"input '{name}' has datatype {datatype.name}; model '{model}' expects {wanted}"
        )
    size = math.prod(shape)
    if len(flat) != size:
        raise InvalidRequest(
            f"input '{name}' has shape {shape}, which holds {size} elements, but its data has "
            f"{len(flat)}"
        )
    _check_shape(model, name, shape, spec)
    if spec.file:
        flat = [_DATA_URI + b64encode(v).decode() if isinstance(v, bytes) else v for v in flat]
    problem = datatype.problem(flat)
    if problem is not None:
        raise InvalidRequest(f"input '{name}' has datatype {datatype.name} but its {problem}")
    if datatype.kind == "float":
        _check_finite(name, flat)
    return flat[0] if spec.scalar else _reshape(flat, shape)


def _check_finite(name: str, flat: list[Any]) -> None:
    """Refuse NaN and ±Inf, which only binary data can carry (a JSON body cannot): no model's
    schema takes them, JSON has no way to record them (they were stored as null, and a model
    handed None failed as if it had crashed)."""
    try:
        if all(map(math.isfinite, flat)):  # in C; the walk below only names the culprit
            return
    except OverflowError:  # an integer too large for a float: finite, walked below
        pass
    for index, value in enumerate(flat):
        if isinstance(value, float) and not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("-Infinity" if value < 0 else "Infinity")
            raise InvalidRequest(
                f"input '{name}' element {index} is {shown}; only finite numbers are accepted"
            )


def _check_shape(model: str, name: str, shape: list[int], spec: TensorSpec) -> None:
    if spec.scalar:
        if math.prod(shape) != 1:
            raise InvalidRequest(
                f"input '{name}' has shape {shape}; model '{model}' takes one value: send shape [1]"
            )
        return
    fits = len(shape) == len(spec.shape) and all(
        e == -1 or a == e for a, e in zip(shape, spec.shape, strict=True)
    )
    if not fits:
        raise InvalidRequest(
            f"input '{name}' has shape {shape}; model '{model}' expects {list(spec.shape)} "
            "(-1: any size)"
        )


def check_requested(model: str, wanted: Sequence[str], schema: dict[str, Any]) -> None:
    """Refuse, before running it, outputs that `model` does not have (where that is known)."""
    known = specs.outputs(schema)
    for name in wanted:
        if known is not None and name not in known:
            raise InvalidRequest(
                f"model '{model}' has no output '{name}'; its outputs: {_names(known)}"
            )


def outputs(
    model: str, output: Any, wanted: Sequence[str] | None, schema: dict[str, Any]
) -> list[dict[str, Any]]:
    """The response's tensors: those `wanted`, in that order, else every one."""
    named = output if isinstance(output, dict) else {specs.OUTPUT: output}
    names = list(named) if wanted is None else list(wanted)
    for name in names:
        if name not in named:
            raise InvalidRequest(
                f"model '{model}' has no output '{name}'; its outputs: {', '.join(named)}"
            )
    known = specs.outputs(schema) or {}
    return [_tensor(name, named[name], known.get(name)) for name in names]


def _tensor(name: str, value: Any, spec: TensorSpec | None) -> dict[str, Any]:
    shape, flat = _layout(value)
    datatype = spec.datatype if spec is not None else infer(flat)
    if DATATYPES[datatype].problem(flat) is not None:
        datatype = infer(flat)
    if datatype == "BYTES":
        flat = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in flat]
    return {"name": name, "datatype": datatype, "shape": shape, "data": flat}


def _layout(value: Any) -> tuple[list[int], list[Any]]:
    """(shape, row-major elements): lists descended while every one at a level is a list of
    the same length."""
    if not isinstance(value, list):
        return [1], [value]
    shape: list[int] = []
    level: list[Any] = [value]
    # Types, lengths and the next level each in C: a level of plain lists needs no walk, and
    # a level of numbers (the leaves) stops at its first element.
    while level and isinstance(level[0], list):
        if set(map(type, level)) != _LIST and not all(isinstance(v, list) for v in level):
            break
        if len(set(map(len, level))) != 1:
            break
        shape.append(len(level[0]))
        level = list(chain.from_iterable(level))
    return shape, level


def _flatten(tensor: RequestInput) -> list[Any]:
    if tensor.data is None:
        raise InvalidRequest(
            f"input '{tensor.name}' has no data; send `data`, or binary data with "
            "parameters.binary_data_size"
        )
    if list not in set(map(type, tensor.data)):  # flat already, as clients mostly send it
        return list(tensor.data)
    flat: list[Any] = []
    _extend(flat, tensor.data)
    return flat


def _extend(flat: list[Any], data: list[Any]) -> None:
    for item in data:
        if isinstance(item, list):
            _extend(flat, item)
        else:
            flat.append(item)


def _reshape(flat: list[Any], shape: Sequence[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _names(found: dict[str, Any]) -> str:
    return ", ".join(found) or "none"


def _sorted(datatypes: frozenset[str]) -> str:
    return ", ".join(name for name in DATATYPES if name in datatypes)
