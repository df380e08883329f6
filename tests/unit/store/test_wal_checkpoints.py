"""SQLite's WAL is checkpointed by a thread of its own (store.checkpoint), never inside the
group writer's commits, and what it copies stays durable as before."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from foretell.domain import Prediction
from foretell.store import PredictionStore, checkpoint
from foretell.store.engine import create_engine, migrate

MakePrediction = Callable[..., Prediction]
BIG_INPUT = {"image": [0.123456789] * 4000}  # about 50 KB a record: the WAL fills fast
RECORDS = 300  # about 15 MB: far past SQLite's default autocheckpoint of 1000 pages (4 MB)
WAL_HEADER, PAGE, FRAME_HEADER = 32, 4096, 24
WAIT_S = 30.0


def _wal_frames(db: Path) -> int:
    """How many pages the WAL file holds (SQLite reuses it from the start after a checkpoint
    copied all of it, so a checkpoint keeps it from growing)."""
    wal = db.with_name(db.name + "-wal")
    return (wal.stat().st_size - WAL_HEADER) // (PAGE + FRAME_HEADER)


def test_the_writer_never_checkpoints_inside_its_commits(
    sqlite_url: str, db_path: Path, make_prediction: MakePrediction, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "EVERY_S", 3600.0)  # the thread stays out of it

    async def write() -> None:
        store = await PredictionStore.open(sqlite_url)
        try:
            for start in range(0, RECORDS, 20):
                await asyncio.gather(
                    *(
                        store.insert(make_prediction(f"p{i}", input=BIG_INPUT))
                        for i in range(start, start + 20)
                    )
                )
            # Every page written since the store opened is still in the WAL: no commit
            # copied it back (SQLite's own autocheckpoint did at 1000 pages, and the WAL
            # then stayed under 1000 pages and one commit's, about 1300).
            assert _wal_frames(db_path) > 2000
        finally:
            await store.close()

    asyncio.run(write())


def test_the_checkpoint_thread_copies_the_wal_once_something_was_committed(
    sqlite_url: str, db_path: Path
) -> None:
    engine = create_engine(sqlite_url)
    migrate(engine)
    commits = 0
    checked = threading.Event()
    checkpointer = checkpoint.Checkpointer(engine, lambda: commits, every_s=0.01)
    original = checkpointer.checkpoint

    def checkpoint_and_tell() -> None:
        original()
        checked.set()

    checkpointer.checkpoint = checkpoint_and_tell  # type: ignore[method-assign]
    try:
        writer = sqlite3.connect(db_path, isolation_level=None)
        writer.execute(checkpoint.WRITER_PRAGMA)
        writer.execute("CREATE TABLE t (x TEXT)")
        writer.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,) for _ in range(2000)])
        assert not checked.wait(0.2)  # nothing committed that it knows of: it stays idle
        assert db_path.stat().st_size < 1_000_000  # the rows are only in the WAL
        commits = 1
        assert checked.wait(WAIT_S), "no checkpoint ran"
        assert db_path.stat().st_size > 2_000_000  # the thread copied them into the file
        writer.close()
    finally:
        checkpointer.close()
        engine.dispose()
    assert checkpointer.checkpoints >= 1
