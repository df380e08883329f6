"""A database that cannot be reached is StoreUnavailable on every read and write, naming the
store (never its password) and the driver's cause; the same store serves again once the server
is back, without being reopened; an error that is not about reaching the database stays as it
was.

The PostgreSQL tests stop and start a server of their own (Postgres.own), not the session's."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from _postgres import Postgres
from foretell.domain import Prediction
from foretell.errors import StoreUnavailable
from foretell.store import PredictionStore
from foretell.store import engine as engine_module
from foretell.store.engine import CONNECT_TIMEOUT_S, create_engine
from foretell.store.reader import Reader
from foretell.store.unavailable import is_unavailable

MakePrediction = Callable[..., Prediction]


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    """A PostgreSQL server these tests may stop: started once for the module (about 2 s)."""
    own = Postgres.own()
    yield own
    own.stop()


def _refused(error: StoreUnavailable, url: str) -> None:
    store = url.replace("postgresql+psycopg://", "postgresql://")
    assert error.message.startswith(f"the store {store} is unavailable (connection failed: ")
    assert "Connection refused" in error.cause, error.cause
    assert error.message.endswith("; retry in 2 s")
    assert error.retry_after_s == 2


@pytest.mark.postgresql
def test_a_stopped_server_fails_every_read_and_write_until_it_is_back(
    server: Postgres, make_prediction: MakePrediction, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.database()

    async def scenario() -> None:
        store = await PredictionStore.open(url)
        try:
            await store.insert(make_prediction("before"))
            server.halt()
            started = time.monotonic()
            reads = {
                "get": store.get("before"),
                "list": store.list(),
                "key": store.keys.by_digest("0" * 64),
                "outbox": store.outbox.events("before"),
                "environments": store.environments.all(),
            }
            for read in reads.values():
                with pytest.raises(StoreUnavailable) as caught:
                    await read
                _refused(caught.value, url)
            writes = await asyncio.gather(
                *(store.insert(make_prediction(f"during-{n}")) for n in range(3)),
                return_exceptions=True,
            )
            assert all(isinstance(w, StoreUnavailable) for w in writes), writes
            # Refused at once: nothing waits for a connect timeout, nor tries row by row.
            assert time.monotonic() - started < CONNECT_TIMEOUT_S
            assert "one by one" not in caplog.text
            server.resume()
            back = await store.get("before")
            assert back is not None
            assert back.id == "before"
            await store.insert(make_prediction("after"))
            page = await store.list()
            assert {p.id for p in page.items} == {"before", "after"}
        finally:
            await store.close()

    asyncio.run(scenario())


@pytest.mark.postgresql
def test_a_restart_between_requests_costs_no_read_or_write(
    server: Postgres, make_prediction: MakePrediction, caplog: pytest.LogCaptureFixture
) -> None:
    """Both the pool's connections and the writer's kept one die in the restart: the pool pings
    what it hands out, and the writer sends its batch again on a new connection, since a batch
    that fails at its first statement never reached a COMMIT."""
    url = server.database()

    async def scenario() -> None:
        store = await PredictionStore.open(url)
        try:
            await store.insert(make_prediction("before"))
            assert await store.get("before") is not None
            server.halt()
            server.resume()
            with caplog.at_level(logging.INFO, logger="foretell.store.writer"):
                await store.insert(make_prediction("after"))
            assert "connection was closed by the database; reconnecting" in caplog.text
            assert await store.get("after") is not None
        finally:
            await store.close()

    asyncio.run(scenario())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_store_is_named_without_its_password() -> None:
    port = _closed_port()
    url = f"postgresql://ada:sekrit@127.0.0.1:{port}/records?application_name=x&password=sekrit"
    engine = create_engine(url)
    reader = Reader(engine)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            asyncio.run(reader.rows(select(text("1"))))
    finally:
        reader.close()
        engine.dispose()
    assert caught.value.store == f"postgresql://ada@127.0.0.1:{port}/records"
    assert "sekrit" not in caught.value.message
    assert "Connection refused" in caught.value.cause


def test_a_server_that_never_answers_is_given_up_on_after_the_connect_timeout() -> None:
    """A listening socket nobody accepts from: the TCP connect succeeds, the server's answer
    never comes (a host gone dark). psycopg's own default would wait 130 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        engine = create_engine(f"postgresql://ada@127.0.0.1:{port}/records")
        reader = Reader(engine)
        started = time.monotonic()
        try:
            with pytest.raises(StoreUnavailable) as caught:
                asyncio.run(reader.rows(select(text("1"))))
        finally:
            reader.close()
            engine.dispose()
        waited = time.monotonic() - started
    assert CONNECT_TIMEOUT_S - 0.5 < waited < CONNECT_TIMEOUT_S + 5, waited
    assert "timeout" in caught.value.cause, caught.value.cause


def test_sqlite_locked_past_its_busy_timeout_is_unavailable(
    sqlite_url: str,
    db_path: Path,
    make_prediction: MakePrediction,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process holds the write lock (a backup, `foretell keys create`) for longer than
    busy_timeout: nothing was written, and trying again shortly is the remedy, as for a server
    restarting. (The timeout is cut to 0.1 s here so that the test need not wait 5 s.)"""
    pragmas = tuple(
        "PRAGMA busy_timeout=100" if p.startswith("PRAGMA busy_timeout") else p
        for p in engine_module._SQLITE_PRAGMAS
    )
    monkeypatch.setattr(engine_module, "_SQLITE_PRAGMAS", pragmas)

    async def scenario() -> None:
        store = await PredictionStore.open(sqlite_url)
        try:
            lock = sqlite3.connect(db_path, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            try:
                with pytest.raises(StoreUnavailable) as caught:
                    await store.insert(make_prediction("locked-out"))
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            assert caught.value.message == (
                f"the store {sqlite_url} is unavailable (database is locked); retry in 2 s"
            )
            await store.insert(make_prediction("locked-out"))
            assert await store.get("locked-out") is not None
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_error_not_about_reaching_the_database_stays_as_it_was(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> None:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(make_prediction("twice"))
            with pytest.raises(IntegrityError):
                await store.insert(make_prediction("twice"))
            await store.insert(make_prediction("then-another"))
        finally:
            await store.close()

    asyncio.run(scenario())


def _wrapped(error: Exception) -> OperationalError:
    return OperationalError("SELECT 1", None, error)


@pytest.mark.parametrize(
    ("driver_error", "expected"),
    [
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.errors.CrashShutdown("terminating connection because of crash"), True),
        (psycopg.errors.CannotConnectNow("the database system is shutting down"), True),
        (psycopg.errors.TooManyConnections("sorry, too many clients already"), True),
        (psycopg.errors.ConnectionFailure("connection failure"), True),
        (psycopg.OperationalError("consuming input failed: server closed the connection"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (psycopg.errors.DiskFull("could not extend file"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_which_driver_errors_mean_unavailable(driver_error: Exception, expected: bool) -> None:
    assert is_unavailable(_wrapped(driver_error)) is expected


def test_a_sqlite_error_other_than_busy_is_not_unavailable(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as conn, pytest.raises(OperationalError) as caught:
            conn.execute(text("SELECT * FROM nope"))
    finally:
        engine.dispose()
    assert "no such table" in str(caught.value)
    assert not is_unavailable(caught.value)
