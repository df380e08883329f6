"""A store cancelled while a file's bytes are being put (a server stopping under an upload or a
model's output) leaves the file whole, its bytes and its record, never bytes no record names:
the retention sweep finds files by their records, so such bytes would stay on disk for good."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from foretell.config import Settings
from foretell.files import FileService
from foretell.files.blobs import LocalBlobs
from foretell.store import PredictionStore


class HeldBlobs(LocalBlobs):
    """A directory whose put, on its thread, has moved the bytes in and then waits for
    `release` before it returns (a slow directory sync; an S3 upload is the same)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.putting = threading.Event()
        self.release = threading.Event()

    def _put(self, key: str, source: Path) -> None:
        super()._put(key, source)
        self.putting.set()
        self.release.wait(10)


async def chunks() -> AsyncIterator[bytes]:
    yield b"some bytes"


def test_a_store_cancelled_during_its_put_keeps_the_file_whole(db_url: str, tmp_path: Path) -> None:
    async def go() -> tuple[set[str], set[str]]:
        store = await PredictionStore.open(db_url)
        blobs = HeldBlobs(tmp_path / "blobs")
        files = FileService(store.files, blobs, Settings(data_dir=tmp_path / "data"))
        try:
            upload = asyncio.create_task(files.upload("acme", "a.txt", None, chunks()))
            await asyncio.to_thread(blobs.putting.wait, 10)
            upload.cancel()
            blobs.release.set()
            with pytest.raises(asyncio.CancelledError):
                await upload
            on_disk = {p.name for p in (tmp_path / "blobs").rglob("file_*")}
            recorded = {f.id for f in await store.files.page("acme", 10) if f.deleted_at is None}
            return on_disk, recorded
        finally:
            await files.close()
            await store.close()

    on_disk, recorded = asyncio.run(go())
    assert on_disk == recorded
