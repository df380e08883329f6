"""One contract for every blob store: the local directory and S3 (a real moto server) put a
staged file at once, read it whole and in ranges, stream it in chunks, and delete it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from _s3 import MotoServer
from foretell.files.blobs import CHUNK_BYTES, Blobs, LocalBlobs
from foretell.files.s3 import S3Blobs

T = TypeVar("T")
DATA = os.urandom(2 * CHUNK_BYTES + 1000)  # three chunks when streamed


@pytest.fixture(params=["local", "s3"])
def make_blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Blobs]]:
    """A factory: the store must be made inside the test's event loop (S3's thread pool)."""
    if request.param == "local":
        yield lambda: LocalBlobs(tmp_path / "files")
        return
    request.getfixturevalue("s3_env")
    moto: MotoServer = request.getfixturevalue("moto")
    bucket = moto.bucket()
    yield lambda: S3Blobs(bucket, "/stored/", tmp_path / "staging", moto.url)
    assert all(key.startswith("stored/") for key in moto.keys(bucket))


def run(make: Callable[[], Blobs], scenario: Callable[[Blobs], Awaitable[T]]) -> T:
    async def go() -> T:
        blobs = make()
        try:
            return await scenario(blobs)
        finally:
            await blobs.close()

    return asyncio.run(go())


def staged(blobs: Blobs, data: bytes) -> Path:
    path = blobs.staging / f".upload-{os.urandom(4).hex()}"
    path.write_bytes(data)
    return path


def test_put_then_read_whole_and_in_ranges(make_blobs: Callable[[], Blobs]) -> None:
    async def scenario(blobs: Blobs) -> tuple[object, ...]:
        source = staged(blobs, DATA)
        await blobs.put("file_a", source)
        return (
            source.exists(),
            await blobs.read("file_a"),
            await blobs.read("file_a", 10, 20),
            await blobs.read("file_a", len(DATA) - 5),
        )

    moved, whole, middle, tail = run(make_blobs, scenario)
    assert moved is False  # the staged file is the store's now
    assert whole == DATA
    assert middle == DATA[10:20]
    assert tail == DATA[-5:]


def test_stream_hands_on_chunks(make_blobs: Callable[[], Blobs]) -> None:
    async def scenario(blobs: Blobs) -> tuple[list[bytes], list[bytes]]:
        await blobs.put("file_b", staged(blobs, DATA))
        whole = [c async for c in blobs.stream("file_b")]
        span = [c async for c in blobs.stream("file_b", 100, CHUNK_BYTES + 200)]
        return whole, span

    whole, span = run(make_blobs, scenario)
    assert b"".join(whole) == DATA
    assert max(len(c) for c in whole) <= CHUNK_BYTES
    assert len(whole) >= 3
    assert b"".join(span) == DATA[100 : CHUNK_BYTES + 200]


def test_an_empty_file(make_blobs: Callable[[], Blobs]) -> None:
    async def scenario(blobs: Blobs) -> tuple[bytes, list[bytes]]:
        await blobs.put("file_e", staged(blobs, b""))
        return await blobs.read("file_e"), [c async for c in blobs.stream("file_e")]

    assert run(make_blobs, scenario) == (b"", [])


def test_delete_removes_the_bytes_and_a_missing_key_is_no_error(
    make_blobs: Callable[[], Blobs],
) -> None:
    async def scenario(blobs: Blobs) -> None:
        await blobs.put("file_c", staged(blobs, b"bytes"))
        await blobs.delete("file_c")
        await blobs.delete("file_c")
        await blobs.delete("file_never")
        with pytest.raises(FileNotFoundError):
            await blobs.read("file_c")
        with pytest.raises(FileNotFoundError):
            async for _ in blobs.stream("file_c"):
                pass

    run(make_blobs, scenario)
