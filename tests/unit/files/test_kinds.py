"""content_type: the bytes decide a file's type; a declared image, audio, video or PDF they are
not is the caller's error, named."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from foretell.files.kinds import KindMismatch, content_type


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32


def test_the_bytes_win_over_the_declared_type_and_the_name() -> None:
    assert content_type(PNG, "text/plain", "notes.txt") == "image/png"
    assert content_type(PNG, None, "photo.jpg") == "image/png"


def test_unrecognized_bytes_take_the_declared_type_then_the_name() -> None:
    assert content_type(b"a,b\n1,2\n", "text/csv; charset=utf-8", "x.bin") == "text/csv"
    assert content_type(b'{"a": 1}', None, "data.json") == "application/json"
    assert content_type(b"\x00\x01", None, "blob") == "application/octet-stream"
    assert content_type(b"", None, "empty") == "application/octet-stream"


def test_octet_stream_declares_nothing() -> None:
    assert content_type(b"a,b\n", "application/octet-stream", "t.csv") == "text/csv"


def test_a_name_that_promises_an_image_does_not_make_text_one() -> None:
    assert content_type(b"hello", None, "cat.png") == "application/octet-stream"


@pytest.mark.parametrize(
    ("head", "declared", "message"),
    [
        (b"hello, world", "image/png", "declared image/png, but the bytes are not an image"),
        (PDF, "IMAGE/PNG", "not an image (they look like application/pdf)"),
        (PNG, "application/pdf", "declared application/pdf, but the bytes are not a PDF"),
        (PNG, "audio/wav", "declared audio/wav, but the bytes are not audio"),
        (b"plain", "video/mp4", "not a video (their kind is not recognized)"),
        (b"plain", "image/svg+xml", "not an image"),
    ],
)
def test_a_declared_kind_the_bytes_are_not_is_named(
    head: bytes, declared: str, message: str
) -> None:
    with pytest.raises(KindMismatch, match=message.replace("(", r"\(").replace(")", r"\)")):
        content_type(head, declared, "upload")


def test_declared_kinds_the_bytes_are_pass() -> None:
    assert content_type(PNG, "image/jpeg", "x") == "image/png"  # an image all the same
    assert content_type(PDF, "application/pdf", "x") == "application/pdf"
    assert content_type(WAV, "audio/wav", "x") == "audio/x-wav"
    assert content_type(b"\n<svg xmlns='x'/>", "image/svg+xml", "x") == "image/svg+xml"


@pytest.mark.parametrize("declared", ["text/" + "x" * 300, "text plain", "text/plain\r\nX: y"])
def test_a_declared_type_that_is_no_media_type_declares_nothing(declared: str) -> None:
    # Kept, it would be served back as Content-Type, and PostgreSQL refuses it past 255 chars.
    assert content_type(b"hello", declared, "a.txt") == "text/plain"
