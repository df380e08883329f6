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
from typing import BinaryIO

from foretell.files.kinds import HEAD_BYTES

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
                digest.update(chunk)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                pending += chunk
                if len(pending) >= WRITE_BYTES:
                    await asyncio.to_thread(file.write, pending)
                    pending = bytearray()
            await asyncio.to_thread(_finish, file, bytes(pending))
        return Staged(path, size, digest.hexdigest(), bytes(head))
    except BaseException:
        discard(path)
        raise


def _finish(file: BinaryIO, rest: bytes) -> None:
    file.write(rest)
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
