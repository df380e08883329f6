"""The protocol's tensor datatypes: which JSON values each holds, and its foretell `x-dtype`.

BF16 is left out: neither numpy nor any of foretell's runtimes has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Kind = Literal["bool", "int", "float", "bytes"]


@dataclass(frozen=True, slots=True)
class Datatype:
    name: str  # as on the wire: "FP32"
    kind: Kind
    x_dtype: str  # as in an ONNX model's schema: "float32"
    numpy: str  # little-endian, as the binary tensor data extension lays elements out

    def problem(self, values: Sequence[Any]) -> str | None:
        """What is wrong with the first element this datatype cannot hold, if any."""
        # Every element's exact type and the extremes, in C (64 FP32 elements: 11 -> 2 us);
        # only data that fails this is walked element by element, to name the first culprit.
        if set(map(type, values)) <= _EXACT[self.kind]:
            if self.kind != "int" or not values:
                return None
            bounds = _BOUNDS[self.numpy]
            if bounds.min <= min(values) and max(values) <= bounds.max:
                return None
        return self._first_problem(values)

    def _first_problem(self, values: Sequence[Any]) -> str | None:
        bounds = _BOUNDS[self.numpy] if self.kind == "int" else None
        for index, value in enumerate(values):
            if not _holds(self.kind, value):
                return f"data element {index} ({_show(value)}) is not {_NOUN[self.kind]}"
            if bounds is not None and not bounds.min <= value <= bounds.max:
                return (
                    f"data element {index} ({value}) is out of {self.name}'s range "
                    f"{bounds.min}..{bounds.max}"
                )
        return None


_NOUN: dict[Kind, str] = {
    "bool": "a boolean",
    "int": "an integer",
    "float": "a number",
    "bytes": "a string",
}

# The types that hold each kind's values exactly as _holds accepts them (JSON's true is no
# number, though Python's bool is an int): data of only these types needs no closer look.
_EXACT: dict[Kind, frozenset[type]] = {
    "bool": frozenset({bool}),
    "int": frozenset({int}),
    "float": frozenset({int, float}),
    "bytes": frozenset({str}),
}

DATATYPES: dict[str, Datatype] = {
    d.name: d
    for d in (
        Datatype("BOOL", "bool", "bool", "?"),
        Datatype("UINT8", "int", "uint8", "<u1"),
        Datatype("UINT16", "int", "uint16", "<u2"),
        Datatype("UINT32", "int", "uint32", "<u4"),
        Datatype("UINT64", "int", "uint64", "<u8"),
        Datatype("INT8", "int", "int8", "<i1"),
        Datatype("INT16", "int", "int16", "<i2"),
        Datatype("INT32", "int", "int32", "<i4"),
        Datatype("INT64", "int", "int64", "<i8"),
        Datatype("FP16", "float", "float16", "<f2"),
        Datatype("FP32", "float", "float32", "<f4"),
        Datatype("FP64", "float", "float64", "<f8"),
        Datatype("BYTES", "bytes", "string", "O"),
    )
}
BY_X_DTYPE = {d.x_dtype: d.name for d in DATATYPES.values()}
_BOUNDS = {d.numpy: np.iinfo(d.numpy) for d in DATATYPES.values() if d.kind == "int"}

# A JSON Schema leaf type: the datatype metadata advertises, and every datatype it accepts.
_INTEGERS = frozenset(n for n, d in DATATYPES.items() if d.kind == "int")
BY_JSON_TYPE: dict[str, tuple[str, frozenset[str]]] = {
    "boolean": ("BOOL", frozenset({"BOOL"})),
    "integer": ("INT64", _INTEGERS),
    "number": ("FP64", _INTEGERS | {"FP16", "FP32", "FP64"}),
    "string": ("BYTES", frozenset({"BYTES"})),
}


def unknown(name: str) -> str:
    """Why `name` is no datatype, listing the ones there are."""
    return f"unknown datatype '{name}'; use one of {', '.join(DATATYPES)}"


def infer(values: Sequence[Any]) -> str:
    """The narrowest datatype that holds every value of a model's output, BYTES at worst."""
    if not values:
        return "BYTES"
    for name in ("BOOL", "INT64", "FP64"):
        if DATATYPES[name].problem(values) is None:
            return name
    return "BYTES"


def _holds(kind: Kind, value: Any) -> bool:
    # JSON's true is no number, though Python's bool is an int.
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "bytes":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "int" else isinstance(value, int | float)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
