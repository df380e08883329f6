"""The binary tensor data extension, input side: tensors' data placed after the JSON, which is
how tritonclient sends inputs by default (`set_data_from_numpy(..., binary_data=True)`).

The request's `Inference-Header-Content-Length` header is the JSON's length; each input whose
`parameters.binary_data_size` is set takes that many bytes of what follows, in input order:
elements little-endian, a BYTES element as a 4-byte length and then its bytes: UTF-8 text,
since foretell's models take strings, except for an input that takes files, whose elements are
the files' bytes as sent."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import numpy as np

from foretell.api.dialects.oip_v2.datatypes import DATATYPES, unknown
from foretell.api.dialects.oip_v2.schemas import RequestInput
from foretell.errors import InvalidRequest, echo

HEADER = "inference-header-content-length"
_LENGTH = 4  # bytes of a BYTES element's length prefix


def split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(the JSON, the binary data after it)."""
    if header_length is None:
        return body, b""
    digits = header_length.strip()
    length = int(digits) if digits.isascii() and digits.isdigit() else -1
    if not 0 <= length <= len(body):
        raise InvalidRequest(
            f"header Inference-Header-Content-Length: '{echo(header_length)}' is not the length of "
            f"the JSON at the start of the {len(body)}-byte body"
        )
    return body[:length], body[length:]


def tensors(
    inputs: list[RequestInput], blob: bytes, files: Container[str] = ()
) -> dict[str, list[Any]]:
    """The flat elements of each input sent as binary data, by name; BYTES elements of the
    inputs named in `files` as bytes, others as text."""
    found: dict[str, list[Any]] = {}
    offset = 0
    for tensor in inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidRequest(
                f"input '{tensor.name}': parameters.binary_data_size must be a number of "
                f"bytes, not {size!r}"
            )
        chunk = blob[offset : offset + size]
        if len(chunk) < size:
            raise InvalidRequest(
                f"input '{tensor.name}' has binary_data_size {size} but only {len(chunk)} bytes "
                "of binary data are left; the header Inference-Header-Content-Length must give "
                "the length of the JSON before them"
            )
        offset += size
        found[tensor.name] = decode(tensor.name, tensor.datatype, chunk, tensor.name in files)
    if offset != len(blob):
        raise InvalidRequest(
            f"the body has {len(blob) - offset} bytes of binary data beyond its inputs' "
            "binary_data_size"
        )
    return found


def decode(name: str, datatype: str, chunk: bytes, files: bool = False) -> list[Any]:
    """The flat elements of one tensor laid out as binary data (its datatype's layout); with
    `files`, BYTES elements as the bytes they are, else as UTF-8 text."""
    known = DATATYPES.get(datatype)
    if known is None:
        raise InvalidRequest(f"input '{name}': {unknown(datatype)}")
    if known.kind == "bytes":
        return _strings(name, chunk, files)
    width = np.dtype(known.numpy).itemsize
    if len(chunk) % width:
        raise InvalidRequest(
            f"input '{name}': {len(chunk)} bytes of binary data are not a whole number of "
            f"{datatype} elements ({width} bytes each)"
        )
    values: list[Any] = np.frombuffer(chunk, dtype=known.numpy).tolist()
    return values


def _strings(name: str, chunk: bytes, files: bool) -> list[Any]:
    values: list[Any] = []
    offset = 0
    while offset < len(chunk):
        size = int.from_bytes(chunk[offset : offset + _LENGTH], "little")
        start = offset + _LENGTH
        raw = chunk[start : start + size]
        if start > len(chunk) or len(raw) < size:
            raise InvalidRequest(f"input '{name}': BYTES element {len(values)} is cut short")
        offset = start + size
        if files:
            values.append(raw)
            continue
        try:
            values.append(raw.decode())
        except UnicodeDecodeError:
            raise InvalidRequest(
                f"input '{name}': BYTES element {len(values)} is not UTF-8 text"
            ) from None
    return values
