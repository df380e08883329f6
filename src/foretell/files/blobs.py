"""Where stored files' bytes live: the interface, and a local directory that implements it.

A file arrives as a staged temporary file (`staging`, see files.intake), complete and synced;
`put` makes it the bytes of `key` all at once, so a reader never sees half a file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

CHUNK_BYTES = 256 * 1024  # what one read of a download hands on


class Blobs(Protocol):
    """A stored file's bytes by key. Ranges are [start, end), end None for the rest. Bytes
    that are not there are FileNotFoundError; a store that cannot be used, StoreUnavailable."""

    @property
    def staging(self) -> Path:
        """The directory uploads are written to before `put`."""
        ...

    @property
    def where(self) -> str:
        """The store, as an error names it (a directory, s3://bucket/prefix)."""
        ...

    async def put(self, key: str, source: Path) -> None:
        """Store the synced file `source` as `key`'s bytes; `source` is gone afterwards."""
        ...

    async def read(self, key: str, start: int = 0, end: int | None = None) -> bytes: ...

    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes in chunks of up to CHUNK_BYTES, each read as it is wanted."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`'s bytes; one already gone is no error."""
        ...

    async def close(self) -> None: ...


class LocalBlobs:
    """Files under a directory (`root/<last two characters of the key>/<key>`), staged in
    `root/.staging`: the same filesystem, so `put` is one rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._staging = root / ".staging"
        self._staging.mkdir(parents=True, exist_ok=True)

    @property
    def staging(self) -> Path:
        return self._staging

    @property
    def where(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key[-2:] / key

    async def put(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: Path) -> None:
        target = self.path(key)
        target.parent.mkdir(exist_ok=True)
        os.replace(source, target)
        _sync_directory(target.parent)  # the rename itself survives a crash

    async def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        return await asyncio.to_thread(self._read, key, start, end)

    def _read(self, key: str, start: int, end: int | None) -> bytes:
        with self.path(key).open("rb") as file:
            file.seek(start)
            return file.read(-1 if end is None else end - start)

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        file = await asyncio.to_thread(self.path(key).open, "rb")
        try:
            await asyncio.to_thread(file.seek, start)
            left = None if end is None else end - start
            while left is None or left > 0:
                size = CHUNK_BYTES if left is None else min(CHUNK_BYTES, left)
                chunk = await asyncio.to_thread(file.read, size)
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            file.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def close(self) -> None:
        pass


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
