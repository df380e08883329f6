"""Opens the database: the async engine, SQLite's connection settings, migrations to head."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite is set up for WAL."""
    _ensure_parent_dir(url)
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
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


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    One transaction holding the write lock, so concurrent openers of a fresh file take turns.
    """
    async with engine.connect() as conn:
        immediate: AsyncConnection = await conn.execution_options(**IMMEDIATE)
        async with immediate.begin():
            await immediate.run_sync(_upgrade)
