"""Tensor contents on gRPC: a request tensor's elements, from its raw bytes or its typed
`contents` field, as the flat lists OIP v2's translation takes; an output's flat elements as the
raw bytes of `raw_output_contents`, which is the only form tritonclient.grpc reads.

Plain values in and out (no generated message classes), so that these can be tested in a
process that has tritonclient.grpc's own `inference.*` messages loaded (see the package)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from foretell.api.dialects.oip_v2 import binary
from foretell.api.dialects.oip_v2.datatypes import DATATYPES, unknown
from foretell.errors import InvalidRequest

# The InferTensorContents field that carries each datatype; FP16 has none (raw only).
FIELDS: dict[str, str] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_LENGTH = 4  # bytes of a BYTES element's length prefix


def check_shape(name: str, shape: Sequence[int], max_dims: int) -> list[int]:
    """`shape` as a list, or InvalidRequest: too many dimensions, or a negative one."""
    if len(shape) > max_dims:
        raise InvalidRequest(
            f"input '{name}' has a shape of {len(shape)} dimensions; at most {max_dims} are "
            "accepted"
        )
    dims = list(shape)
    if any(d < 0 for d in dims):
        raise InvalidRequest(f"input '{name}' has shape {dims}; dimensions are sizes, 0 or more")
    return dims


def from_raw(
    name: str, datatype: str, shape: Sequence[int], chunk: bytes, files: bool = False
) -> list[Any]:
    """The elements of `raw_input_contents` entry `chunk` for input `name`; with `files` (an
    input that takes files), BYTES elements as the bytes they are, else as UTF-8 text."""
    known = DATATYPES.get(datatype)
    if known is None:
        raise InvalidRequest(f"input '{name}': {unknown(datatype)}")
    if known.kind != "bytes":
        width = np.dtype(known.numpy).itemsize
        count = math.prod(shape)
        if len(chunk) != count * width:
            raise InvalidRequest(
                f"input '{name}' has shape {list(shape)} and datatype {datatype}, which take "
                f"{count * width} bytes ({count} of {width} bytes), but its "
                f"raw_input_contents entry has {len(chunk)}"
            )
    return binary.decode(name, datatype, chunk, files)


def from_contents(
    name: str, datatype: str, fields: dict[str, Sequence[Any]], files: bool = False
) -> list[Any]:
    """The elements of an input's typed `contents`, given as its non-empty fields by name; with
    `files`, BYTES elements as the bytes they are, else as UTF-8 text."""
    if datatype not in DATATYPES:
        raise InvalidRequest(f"input '{name}': {unknown(datatype)}")
    field = FIELDS.get(datatype)
    if field is None:
        raise InvalidRequest(
            f"input '{name}' has datatype {datatype}, which has no contents field: send it in "
            "raw_input_contents"
        )
    others = sorted(f for f in fields if f != field)
    if others:
        raise InvalidRequest(
            f"input '{name}' has datatype {datatype}, whose elements go in contents.{field}, "
            f"but contents.{others[0]} is set"
        )
    values = list(fields.get(field, ()))
    if datatype != "BYTES" or files:
        return values
    try:
        return [value.decode() for value in values]
    except UnicodeDecodeError:
        index = next(i for i, v in enumerate(values) if not _utf8(v))
        raise InvalidRequest(f"input '{name}': BYTES element {index} is not UTF-8 text") from None


def raw(datatype: str, flat: Sequence[Any]) -> bytes:
    """An output tensor's elements as `raw_output_contents` lays them out."""
    known = DATATYPES[datatype]
    if known.kind != "bytes":
        return np.asarray(flat, dtype=known.numpy).tobytes()
    parts: list[bytes] = []
    for value in flat:
        encoded = value.encode() if isinstance(value, str) else bytes(value)
        parts += (len(encoded).to_bytes(_LENGTH, "little"), encoded)
    return b"".join(parts)


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True
