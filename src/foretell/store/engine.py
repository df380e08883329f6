"""Opens the database: the engine, SQLite's connection settings, migrations to head.

The engine is synchronous and the store calls it from threads. Measured on 2 cores: one committed
row through aiosqlite's async adapter took 1.1 ms (each DBAPI call is a hop to its thread and
back); the same commit as one hop into a thread running the sync engine took 0.2 ms, and
64-row group commits 30 us/row against 49.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as sqlalchemy_engine
from sqlalchemy.engine import URL, make_url

MIGRATIONS = Path(__file__).parent / "migrations"

# Execution option asking SQLite for BEGIN IMMEDIATE: take the write lock up front (waiting up to
# busy_timeout for another writer) instead of failing mid-transaction. Ignored by other databases.
IMMEDIATE = {"foretell_sqlite_begin": "BEGIN IMMEDIATE"}

# WAL with synchronous=NORMAL makes a commit durable against the *process* being killed (the WAL
# write has reached the OS when commit returns), which is what foretell promises; only a power
# loss or OS crash can lose the last commits, which synchronous=FULL would add an fsync to prevent.
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
_WAL_TRIES = 50
# Async drivers named in older configs map to the sync driver of the same database.
_SYNC_DRIVERS = {"aiosqlite": "pysqlite", "asyncpg": "psycopg"}


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN skips DDL, leaving migrations half-applied on a crash;
    # turning it off and emitting BEGIN ourselves (below) makes every transaction real.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch to WAL, waiting out other first openers of a new file.

    The switch takes a shared lock and then needs an exclusive one; SQLite answers BUSY at once
    rather than invoke the busy handler there (it could deadlock), so several processes opening a
    new database together fail without this. WAL is persistent: later opens never race."""
    for attempt in range(_WAL_TRIES):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:
            if "database is locked" not in str(exc) or attempt == _WAL_TRIES - 1:
                raise
            time.sleep(0.05)  # only on a brand-new file's first opens


def _on_sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get("foretell_sqlite_begin", "BEGIN"))


def _ensure_parent_dir(url: str) -> None:
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # a URI filename; leave it to SQLite
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def sync_url(url: str) -> URL:
    """`url` with an async driver (sqlite+aiosqlite, postgresql+asyncpg) swapped for a sync one."""
    parsed = make_url(url)
    driver = _SYNC_DRIVERS.get(parsed.get_driver_name())
    if driver is None:
        return parsed
    return parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}")


def create_engine(url: str) -> Engine:
    """An engine for `url`, safe to use from several threads; SQLite is set up for WAL."""
    _ensure_parent_dir(url)
    parsed = sync_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sqlalchemy_engine(parsed, pool_pre_ping=True)
    # The pool hands a connection to one thread at a time, so sqlite3's same-thread check
    # only gets in the way.
    engine = sqlalchemy_engine(parsed, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, no alembic.ini involved.

    With `connection`, env.py migrates through it inside the caller's transaction.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    One transaction holding the write lock, so concurrent openers of a fresh file take turns.
    """
    with engine.connect() as conn:
        immediate = conn.execution_options(**IMMEDIATE)
        with immediate.begin():
            _upgrade(immediate)
