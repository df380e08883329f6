"""Group commit: one background task writes queued row snapshots, many rows per transaction.

Callers put full-row snapshots; rows for the same key that wait together are coalesced (an insert
followed by updates becomes one insert of the latest row). The task takes everything queued,
writes it in ONE transaction on the writer's own thread, commits, and only then resolves the
callers' futures. While a transaction is in flight the next batch accumulates, so concurrent
writers share commits.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Table, bindparam, insert, update

from foretell.store.engine import IMMEDIATE

log = logging.getLogger(__name__)

Kind = Literal["insert", "update"]
_WHERE_KEY = "where_key"


@dataclass(slots=True)
class _Entry:
    kind: Kind
    row: dict[str, Any]
    done: asyncio.Future[None] | None = None  # created only when some caller waits


class _Batch:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.entries: dict[Any, _Entry] = {}
        self.done: asyncio.Future[None] = loop.create_future()


def _settle(future: asyncio.Future[None] | None, error: BaseException | None) -> None:
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)
        return
    future.set_exception(error)
    future.exception()  # already logged here; no "exception never retrieved" if nobody awaits


class GroupWriter:
    """Writes row snapshots of `table` (keyed by column `key`) from one background task."""

    def __init__(self, engine: Engine, table: Table, key: str = "id") -> None:
        self.commits = 0  # transactions committed; lets tests and metrics see the grouping
        self._engine = engine
        self._table = table
        self._key = key
        self._insert = insert(table)
        self._update = update(table).where(table.c[key] == bindparam(_WHERE_KEY))
        # One thread: transactions never contend for SQLite's write lock among themselves.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"foretell-writer-{table.name}")
        # The writer thread's own connection, kept open: checking one out of the pool for
        # every commit was a third of SQLAlchemy's cost of a one-row transaction.
        self._conn: Connection | None = None
        self._loop = asyncio.get_running_loop()
        self._batch = _Batch(self._loop)
        self._inflight: _Batch | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self._task = self._loop.create_task(self._run(), name=f"foretell-writer-{table.name}")

    def put(self, kind: Kind, row: dict[str, Any], *, wait: bool) -> asyncio.Future[None] | None:
        """Queue `row`; with `wait`, a future resolved once it is committed (or failed)."""
        if self._closed or self._task.done():
            raise RuntimeError(f"the {self._table.name} store is closed")
        key = row[self._key]
        entry = self._batch.entries.get(key)
        if entry is None:
            entry = self._batch.entries[key] = _Entry(kind, row)
        else:
            entry.row = row
            if kind == "insert":
                entry.kind = "insert"
        self._wake.set()
        if wait and entry.done is None:
            entry.done = self._loop.create_future()
        return entry.done if wait else None

    async def flush(self) -> None:
        """Wait until everything put so far is written; raises the first failure among it."""
        batches = [b for b in (self._inflight, self._batch) if b is not None]
        self._wake.set()
        for batch in batches:
            await asyncio.shield(batch.done)

    async def close(self) -> None:
        """Write what is queued, then stop the task. Failures were logged and given to waiters."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        try:
            await self._task
        finally:
            await self._loop.run_in_executor(self._thread, self._disconnect)
            self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._batch = self._batch, _Batch(self._loop)
            self._inflight = batch
            await self._write(batch)
            self._inflight = None
            if self._closed and not self._batch.entries:
                _settle(self._batch.done, None)
                return

    async def _write(self, batch: _Batch) -> None:
        entries = list(batch.entries.values())
        first_error: Exception | None = None
        try:
            if entries:
                await self._commit(entries)
        except Exception as error:
            if len(entries) == 1:
                self._fail(entries[0], error)
                first_error = error
            else:
                # One bad row (say a duplicate id) must not fail everyone it shared a commit
                # with: retry row by row so only its own callers see the error.
                log.warning("group commit of %d rows failed; retrying one by one", len(entries))
                first_error = await self._write_one_by_one(entries)
        else:
            for entry in entries:
                _settle(entry.done, None)
        _settle(batch.done, first_error)

    async def _write_one_by_one(self, entries: list[_Entry]) -> Exception | None:
        first_error: Exception | None = None
        for entry in entries:
            try:
                await self._commit([entry])
            except Exception as error:
                self._fail(entry, error)
                first_error = first_error or error
            else:
                _settle(entry.done, None)
        return first_error

    def _fail(self, entry: _Entry, error: Exception) -> None:
        key = entry.row[self._key]
        log.error("%s of %s %r failed", entry.kind, self._table.name, key, exc_info=error)
        _settle(entry.done, error)

    async def _commit(self, entries: list[_Entry]) -> None:
        inserts = [e.row for e in entries if e.kind == "insert"]
        updates = [
            {_WHERE_KEY: e.row[self._key], **{k: v for k, v in e.row.items() if k != self._key}}
            for e in entries
            if e.kind == "update"
        ]
        await self._loop.run_in_executor(self._thread, self._transaction, inserts, updates)
        self.commits += 1

    def _transaction(self, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]) -> None:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(**IMMEDIATE)
        try:
            with self._conn.begin():
                if inserts:
                    self._conn.execute(self._insert, inserts)
                if updates:
                    self._conn.execute(self._update, updates)
        except Exception:
            self._disconnect()  # the next transaction starts on a fresh connection
            raise

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
