"""Raw SQL on a test's store, on either backend, past the store's own code: to read what is
stored, write rows as another program might, or hold the lock that stalls the store's writer.

Plain helpers: `from _databases import execute` (tests/ is on sys.path, see _postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from foretell.store.engine import IMMEDIATE, create_engine, sync_url


def backend(db_url: str) -> str:
    """'sqlite' or 'postgresql'."""
    return sync_url(db_url).get_backend_name()


def execute(db_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one statement in its own committed transaction; its rows (none for a write)."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


@contextmanager
def write_lock(db_url: str, table: str = "predictions") -> Iterator[None]:
    """Hold what keeps the store's writer from committing to `table` until the block ends:
    SQLite's one write lock (BEGIN IMMEDIATE), or on PostgreSQL a lock on the table that
    conflicts with INSERT and UPDATE. Rolled back on leaving."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            locking = conn.execution_options(**IMMEDIATE)
            transaction = locking.begin()
            if locking.dialect.name == "postgresql":
                locking.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                transaction.rollback()
    finally:
        engine.dispose()
