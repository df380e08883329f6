"""Staging a file keeps the event loop free: its bytes are hashed where they are written, on a
thread, so a 100 MB upload or model output never holds the loop for the length of its sha256."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from foretell.files import intake


class _RecordingSha256:
    """sha256, recording the thread of each `update`."""

    def __init__(self, threads: set[int]) -> None:
        self._real = hashlib.sha256()
        self._threads = threads

    def update(self, data: Any) -> None:
        self._threads.add(threading.get_ident())
        self._real.update(data)

    def hexdigest(self) -> str:
        return self._real.hexdigest()


def test_staged_bytes_are_hashed_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[int] = set()
    fake = SimpleNamespace(sha256=lambda: _RecordingSha256(threads))
    monkeypatch.setattr(intake, "hashlib", fake)
    data = bytes(range(256)) * (3 * intake.WRITE_BYTES // 256 + 7)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    async def go() -> tuple[intake.Staged, int]:
        return await intake.stage(chunks(), tmp_path, lambda size: None), threading.get_ident()

    staged, loop_thread = asyncio.run(go())
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert staged.path.read_bytes() == data
    assert threads
    assert loop_thread not in threads
