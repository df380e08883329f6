"""Stage an incoming file: its chunks to a temporary file (never whole in memory), hashed and
measured on the way, synced before anything refers to it; removed again if anything fails."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from foretell.files.kinds import HEAD_BYTES

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

WRITE_BYTES = 1024 * 1024  # chunks gathered before one write on a thread


@dataclass(frozen=True, slots=True)
class Staged:
    path: Path
    size: int
    sha256: str
    head: bytes  # the first HEAD_BYTES, to tell what the bytes are


async def stage(
    chunks: AsyncIterable[bytes], directory: Path, check: Callable[[int], None]
) -> Staged:
    """Write `chunks` to a new file in `directory`; `check(size so far)` may raise to stop
    (a size or quota limit), which removes the file."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            digest = hashlib.sha256()
            head = bytearray()
            pending = bytearray()
            size = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                check(size)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                pending += chunk
                if len(pending) >= WRITE_BYTES:
                    # Hashed on the thread too: 100 MB of sha256 would hold the loop ~0.2 s.
                    await asyncio.to_thread(_write, file, digest, pending)
                    pending = bytearray()
            await asyncio.to_thread(_finish, file, digest, pending)
        return Staged(path, size, digest.hexdigest(), bytes(head))
    except BaseException:
        discard(path)
        raise


def _write(file: BinaryIO, digest: Hash, data: bytearray) -> None:
    digest.update(data)
    file.write(data)


def _finish(file: BinaryIO, digest: Hash, rest: bytearray) -> None:
    _write(file, digest, rest)
    file.flush()
    os.fsync(file.fileno())


def discard(path: Path) -> None:
    """Remove a staged file, if it is still there (a moment's work: not worth a thread, and it
    must happen even while a cancelled task unwinds)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def clear_stale(directory: Path, older_than_s: float, now: float) -> list[Path]:
    """Remove staged files untouched for `older_than_s` (by the wall clock `now`): left by a
    process that crashed mid-upload. One being written is touched at every write, and a body
    that stops coming is cut off long before (body_timeout_s). The files removed."""
    removed = []
    for path in directory.glob(".upload-*"):
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime > older_than_s:
                discard(path)
                removed.append(path)
    return removed
