"""Tensor contents on gRPC: raw bytes and typed fields in, raw bytes out (api.oip_grpc.contents)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from foretell.api.oip_grpc import contents
from foretell.errors import InvalidRequest


def test_raw_fp32_elements_come_back_as_sent() -> None:
    pixels = np.linspace(0, 16, 64, dtype=np.float32)

    assert contents.from_raw("features", "FP32", [1, 64], pixels.tobytes()) == pixels.tolist()


def test_raw_bytes_of_another_size_name_the_input_shape_and_sizes() -> None:
    with pytest.raises(InvalidRequest) as caught:
        contents.from_raw("features", "FP32", [2, 64], bytes(256))

    assert caught.value.message == (
        "input 'features' has shape [2, 64] and datatype FP32, which take 512 bytes (128 of 4 "
        "bytes), but its raw_input_contents entry has 256"
    )


def test_raw_bytes_elements_are_length_prefixed_utf8() -> None:
    chunk = b"".join(len(s).to_bytes(4, "little") + s for s in (b"hi", "é".encode()))

    assert contents.from_raw("text", "BYTES", [2], chunk) == ["hi", "é"]


def test_typed_contents_must_use_their_datatype_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        contents.from_contents("features", "FP32", {"int_contents": [1, 2]})

    assert caught.value.message == (
        "input 'features' has datatype FP32, whose elements go in contents.fp32_contents, but "
        "contents.int_contents is set"
    )


def test_fp16_has_no_contents_field() -> None:
    with pytest.raises(InvalidRequest, match="FP16, which has no contents field"):
        contents.from_contents("x", "FP16", {})


def test_bytes_contents_that_are_not_utf8_name_the_element() -> None:
    with pytest.raises(InvalidRequest) as caught:
        contents.from_contents("text", "BYTES", {"bytes_contents": [b"ok", b"\xff"]})

    assert caught.value.message == "input 'text': BYTES element 1 is not UTF-8 text"


def test_a_file_inputs_bytes_stay_bytes_whichever_way_they_come() -> None:
    png = b"\x89PNG\r\n\x1a\n"  # not UTF-8: as text it would be refused
    chunk = len(png).to_bytes(4, "little") + png

    assert contents.from_raw("image", "BYTES", [1], chunk, files=True) == [png]
    assert contents.from_contents("image", "BYTES", {"bytes_contents": [png]}, files=True) == [png]


def test_a_shape_is_refused_past_the_dimension_limit_or_below_zero() -> None:
    with pytest.raises(InvalidRequest, match="65 dimensions; at most 64"):
        contents.check_shape("x", [1] * 65, 64)
    with pytest.raises(InvalidRequest, match=r"shape \[2, -1\]; dimensions are sizes"):
        contents.check_shape("x", [2, -1], 64)


def test_outputs_are_laid_out_as_tritonclient_reads_them() -> None:
    assert np.frombuffer(contents.raw("INT64", [3, 7]), dtype="<i8").tolist() == [3, 7]
    assert np.frombuffer(contents.raw("FP32", [0.5]), dtype="<f4").tolist() == [0.5]
    assert contents.raw("BYTES", ["ab", ""]) == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"


def test_the_app_loads_no_generated_messages_until_a_grpc_server_starts() -> None:
    # tritonclient.grpc defines the same inference.* messages: protobuf refuses a process both.
    code = (
        "import sys, foretell.api.app, foretell.cli.main; "
        "print([m for m in sys.modules if m.startswith('foretell.api.oip_grpc.proto.')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "[]"
