"""A finished prediction whose record cannot be committed: tried again, then the caller's error.

The database refuses the write for real: a SQLite trigger aborts any write that would store the
prediction as succeeded, as a full disk or a broken connection would."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from _app import FIXTURES, NativeApi

from foretell.service import task as task_module

pytestmark = pytest.mark.anyio

REFUSE = """
CREATE TRIGGER refuse_{op} BEFORE {op} ON predictions WHEN NEW.status = 'succeeded'
BEGIN SELECT RAISE(ABORT, 'disk on fire'); END
"""

Serve = Callable[..., AbstractAsyncContextManager[NativeApi]]


def refuse_success(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(REFUSE.format(op="INSERT"))
        conn.execute(REFUSE.format(op="UPDATE"))


def allow_success(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER refuse_INSERT")
        conn.execute("DROP TRIGGER refuse_UPDATE")


def stored_status(db: Path, prediction_id: str) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT status FROM predictions WHERE id = ?", (prediction_id,)
        ).fetchone()
    return None if row is None else str(row[0])


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_module, "SAVE_RETRY_DELAYS_S", (0.01, 0.01), raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "foretell.db"


@pytest.mark.usefixtures("quick_retries")
async def test_a_waiting_caller_gets_the_error_not_an_outcome_the_store_lacks(
    serve: Serve, db: Path
) -> None:
    async with serve({"acme/echo": FIXTURES / "echo"}) as api:
        refuse_success(db)
        response = await api.post("acme/echo", {"text": "hi"}, prefer="wait=30")
        assert response.status_code == 500, response.text
        detail = response.json()["detail"]
        assert "succeeded, but its record could not be stored (3 tries" in detail
        assert "disk on fire" in detail
        listed = await api.list_all()
        assert [p["status"] for p in listed if p["status"] == "succeeded"] == []


@pytest.mark.usefixtures("quick_retries")
async def test_an_async_prediction_is_never_shown_finished_when_its_end_was_not_stored(
    serve: Serve, db: Path
) -> None:
    async with serve({"acme/sleeps": FIXTURES / "sleeps"}) as api:
        refuse_success(db)
        created = await api.create("acme/sleeps", {"seconds": 2})
        url = f"/v1/predictions/{created['id']}"
        # Hold the database's write lock, so that the end's write waits while a caller asks.
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            deadline = time.monotonic() + 30
            while True:  # until a GET waits: the model is done and its record's write waits
                get = asyncio.ensure_future(api.http.get(url))
                done, _ = await asyncio.wait([get], timeout=0.3)
                if not done:
                    break
                assert get.result().json()["status"] in ("pending", "processing")
                assert time.monotonic() < deadline, "the model never finished"
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        response = await get
        assert response.status_code == 500, response.text
        assert "succeeded, but its record could not be stored" in response.json()["detail"]
        after = await api.get(created["id"])
        assert after["status"] == "processing", after
        assert stored_status(db, created["id"]) == "processing"


class _OnWarning(logging.Handler):
    """Runs `then` on the event loop's thread as the first failed try is logged."""

    def __init__(self, then: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.then = then
        self.tries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "storing prediction" in record.getMessage():
            self.tries += 1
            if self.tries == 1:
                self.then()


@pytest.fixture
def on_first_failure(db: Path) -> Iterator[_OnWarning]:
    handler = _OnWarning(lambda: allow_success(db))
    logger = logging.getLogger(task_module.__name__)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_a_write_that_fails_once_is_tried_again_and_the_outcome_kept(
    serve: Serve, db: Path, on_first_failure: _OnWarning
) -> None:
    async with serve({"acme/echo": FIXTURES / "echo"}) as api:
        refuse_success(db)
        response = await api.post("acme/echo", {"text": "hi"}, prefer="wait=30")
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["status"], body["output"]) == ("succeeded", {"text": "hi", "n": 1})
        assert on_first_failure.tries == 1
        assert stored_status(db, body["id"]) == "succeeded"
