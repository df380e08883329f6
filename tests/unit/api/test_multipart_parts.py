"""api.multipart.parts: a multipart body read part by part however it is split into chunks;
one cut short, or malformed, is the caller's error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from foretell.api.multipart import parts
from foretell.errors import InvalidRequest

TYPE = "multipart/form-data; boundary=Bnd"
BODY = (
    b"--Bnd\r\n"
    b'Content-Disposition: form-data; name="input"\r\n\r\n'
    b'{"a": 1}\r\n'
    b"--Bnd\r\n"
    b'Content-Disposition: form-data; name="file"; filename="x.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
    b"\x89PNG\r\n--not the boundary\r\n" + b"p" * 3000 + b"\r\n"
    b"--Bnd--\r\n"
)


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(body), size):
        yield body[at : at + size]


def read(body: bytes, size: int) -> list[tuple[str, str | None, str | None, bytes]]:
    async def go() -> list[tuple[str, str | None, str | None, bytes]]:
        found = []
        async for part in parts(TYPE, chunked(body, size)):
            data = b"".join([c async for c in part.chunks])
            found.append((part.name, part.filename, part.content_type, data))
        return found

    return asyncio.run(go())


@pytest.mark.parametrize("size", [1, 7, 64, 1000, len(BODY)])
def test_every_part_whatever_the_chunks(size: int) -> None:
    assert read(BODY, size) == [
        ("input", None, None, b'{"a": 1}'),
        ("file", "x.png", "image/png", b"\x89PNG\r\n--not the boundary\r\n" + b"p" * 3000),
    ]


def test_a_part_left_unread_is_skipped() -> None:
    async def go() -> list[str]:
        return [part.name async for part in parts(TYPE, chunked(BODY, 100))]

    assert asyncio.run(go()) == ["input", "file"]


@pytest.mark.parametrize("cut", [10, len(BODY) // 2, len(BODY) - 5])
def test_a_body_cut_short_is_refused(cut: int) -> None:
    with pytest.raises(InvalidRequest, match="ends before its closing boundary"):
        read(BODY[:cut], 64)


def test_a_malformed_body_and_a_type_without_boundary_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="multipart body is malformed"):
        read(b"--Bnd\r\nno header end" + b"\x00" * 10 + b"\r\n\r\n", 64)

    async def no_boundary() -> None:
        async for _ in parts("multipart/form-data", chunked(BODY, 64)):
            pass

    with pytest.raises(InvalidRequest, match="names no boundary"):
        asyncio.run(no_boundary())


def test_a_boundary_too_long_for_the_parser_is_the_callers_error() -> None:
    # python-multipart refuses a boundary over 256 characters with a FormParserError: a 500.
    long = "b" * 5000
    body = f'--{long}\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--{long}--\r\n'

    async def go() -> None:
        async for _ in parts(f"multipart/form-data; boundary={long}", chunked(body.encode(), 64)):
            pass

    with pytest.raises(
        InvalidRequest, match="boundary of 5000 characters is over the limit of 256"
    ):
        asyncio.run(go())
