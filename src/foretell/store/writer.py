"""Group commit: one background task writes queued row snapshots, many rows per transaction.

Callers put row snapshots, keyed by table and primary key; rows for the same key that wait
together are coalesced (an insert followed by updates becomes one insert of the merged row). A
row can carry rows of other tables to insert with it, in the same transaction whatever happens
(a prediction's status change and the webhook events it causes). The task takes everything
queued, writes it in ONE transaction on the writer's own thread, commits, and only then resolves
the callers' futures. While a transaction is in flight the next batch accumulates, so concurrent
writers share commits.

A database that cannot be reached fails the whole batch with StoreUnavailable (unavailable.py),
at once; the connection is dropped and the next batch opens a new one. The writer keeps its
connection between batches, so after a server restart the first batch finds it dead: that
fails at its first statement, before anything could commit, and is sent again once on a new
connection rather than costing its callers a failure.

A table that API processes claim rows of (predictions, see store.leases; webhook events, see
store.outbox) is written through its `Guard`: an update there lands only on a row this process
still holds; one that finds the row
taken resolves its callers with ClaimLost, its attached rows left out, while the rest of the
batch commits. `transact` runs other work (renewing and taking claims) on the same connection
between batches, so that on SQLite it never waits for this process's own write lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Insert, Table, Update, bindparam, insert, update

from foretell.errors import StoreUnavailable
from foretell.store.checkpoint import WRITER_PRAGMA, Checkpointer
from foretell.store.engine import IMMEDIATE
from foretell.store.unavailable import lost_connection, unavailable

log = logging.getLogger(__name__)

Kind = Literal["insert", "update"]
_WHERE_KEY = "where_key"
T = TypeVar("T")


class ClaimLost(Exception):
    """An update of a row this process no longer holds: another process claimed it (its lease
    had expired), or it already ended. Nothing of that write was stored."""

    def __init__(self, table: str, key: Any) -> None:
        super().__init__(
            f"{table} {key!r} is no longer this process's to write (another process took it "
            "over, or it ended); this write was dropped"
        )
        self.table = table
        self.key = key


class Guard(Protocol):
    """Writes the rows of one table whose rows processes claim (store.leases.PredictionGuard)."""

    @property
    def table(self) -> Table: ...

    def insert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert new rows, claiming the unfinished ones for this process."""

    def update(self, conn: Connection, rows: list[dict[str, Any]]) -> list[bool]:
        """Update each row (its primary key in it) where this process still holds it; for
        each, whether it did."""


Attached = Sequence[tuple[Table, dict[str, Any]]]


@dataclass(slots=True)
class _Entry:
    table: Table
    kind: Kind
    row: dict[str, Any]
    attached: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)  # inserted with it
    done: asyncio.Future[None] | None = None  # created only when some caller waits


class _Batch:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.entries: dict[tuple[str, Any], _Entry] = {}
        self.done: asyncio.Future[None] = loop.create_future()


def _settle(future: asyncio.Future[None] | None, error: BaseException | None) -> None:
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)
        return
    future.set_exception(error)
    future.exception()  # already logged here; no "exception never retrieved" if nobody awaits


class _Statements:
    """One table's insert, and its update by primary key."""

    def __init__(self, table: Table) -> None:
        (key,) = table.primary_key.columns
        self.key = key.name
        self.insert: Insert = insert(table)
        self.update: Update = update(table).where(key == bindparam(_WHERE_KEY))


class GroupWriter:
    """Writes row snapshots of `tables` (each keyed by its one primary key column) from one
    background task."""

    def __init__(
        self, engine: Engine, tables: Sequence[Table], *, guards: Sequence[Guard] = ()
    ) -> None:
        self.commits = 0  # transactions committed; lets tests and metrics see the grouping
        self._engine = engine
        self._guards = {guard.table.name: guard for guard in guards}
        self._statements = {table.name: _Statements(table) for table in tables}
        # One thread: transactions never contend for SQLite's write lock among themselves.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="foretell-writer")
        # The writer thread's own connection, kept open: checking one out of the pool for
        # every commit was a third of SQLAlchemy's cost of a one-row transaction.
        self._conn: Connection | None = None
        # SQLite: the WAL is checkpointed on a thread of its own, not inside these commits.
        self._checkpointer = (
            Checkpointer(engine, lambda: self.commits) if engine.dialect.name == "sqlite" else None
        )
        self._loop = asyncio.get_running_loop()
        self._batch = _Batch(self._loop)
        self._inflight: _Batch | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self._task = self._loop.create_task(self._run(), name="foretell-writer")

    def put(
        self,
        table: Table,
        kind: Kind,
        row: dict[str, Any],
        *,
        wait: bool,
        attached: Attached = (),
    ) -> asyncio.Future[None] | None:
        """Queue `row` (and `attached` rows to insert in the same transaction); with `wait`, a
        future resolved once it is committed (or failed). An update may hold only the columns
        it changes; it is merged into whatever is queued for the same row."""
        if self._closed or self._task.done():
            raise RuntimeError("the store is closed")
        key = (table.name, row[self._statements[table.name].key])
        entry = self._batch.entries.get(key)
        if entry is None:
            entry = self._batch.entries[key] = _Entry(table, kind, row)
        else:
            entry.row = {**entry.row, **row}
            if kind == "insert":
                entry.kind = "insert"
        entry.attached.extend(attached)
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

    async def transact(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a transaction of its own on the writer's thread and connection, between
        group commits; its result, once committed."""
        return await self._loop.run_in_executor(self._thread, self._transaction, work)

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
            if self._checkpointer is not None:
                await asyncio.to_thread(self._checkpointer.close)

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
        lost: set[int] = set()
        try:
            if entries:
                lost = await self._commit(entries)
        except StoreUnavailable as error:
            # No row of it was the cause: one by one would only wait on the database again.
            log.warning("a commit of %d rows failed: %s", len(entries), error)
            for entry in entries:
                _settle(entry.done, error)
            first_error = error
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
            for index, entry in enumerate(entries):
                _settle(entry.done, self._lost(entry) if index in lost else None)
        _settle(batch.done, first_error)

    async def _write_one_by_one(self, entries: list[_Entry]) -> Exception | None:
        first_error: Exception | None = None
        for entry in entries:
            try:
                lost = await self._commit([entry])
            except Exception as error:
                self._fail(entry, error)
                first_error = first_error or error
            else:
                _settle(entry.done, self._lost(entry) if lost else None)
        return first_error

    def _lost(self, entry: _Entry) -> ClaimLost:
        key = entry.row[self._statements[entry.table.name].key]
        log.warning(
            "%s %r is no longer this process's (taken over or ended); this write was dropped",
            entry.table.name,
            key,
        )
        return ClaimLost(entry.table.name, key)

    def _fail(self, entry: _Entry, error: Exception) -> None:
        key = entry.row[self._statements[entry.table.name].key]
        log.error("%s of %s %r failed", entry.kind, entry.table.name, key, exc_info=error)
        _settle(entry.done, error)

    async def _commit(self, entries: list[_Entry]) -> set[int]:
        """Write `entries` in one transaction; the positions of those whose claim was lost."""
        lost = await self.transact(lambda conn: self._apply(conn, entries))
        self.commits += 1
        return lost

    def _apply(self, conn: Connection, entries: list[_Entry]) -> set[int]:
        # Inserts first. Then each guarded table in turn (in the order the guards were given):
        # its updates, then the rows attached to its entries whose claim held (a lost write's
        # webhook events never happened), so that the next table's updates find rows attached
        # in this batch (a prediction's new event, updated as its delivery begins). Then the
        # other tables' attached rows and updates. executemany needs one statement per table
        # and set of columns.
        inserts: dict[str, list[dict[str, Any]]] = {}
        guarded: dict[str, list[int]] = {}
        updates: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
        for index, e in enumerate(entries):
            if e.kind == "insert":
                inserts.setdefault(e.table.name, []).append(e.row)
            elif e.table.name in self._guards:
                guarded.setdefault(e.table.name, []).append(index)
            else:
                key = self._statements[e.table.name].key
                params = {k: v for k, v in e.row.items() if k != key}
                params[_WHERE_KEY] = e.row[key]
                updates.setdefault((e.table.name, tuple(params)), []).append(params)
        for name, rows in inserts.items():
            self._insert(conn, name, rows)
        lost: set[int] = set()
        for name, guard in self._guards.items():
            if indexes := guarded.get(name):
                held = guard.update(conn, [entries[i].row for i in indexes])
                lost |= {index for index, kept in zip(indexes, held, strict=True) if not kept}
            self._attach(
                conn, [e for i, e in enumerate(entries) if e.table.name == name and i not in lost]
            )
        self._attach(conn, [e for e in entries if e.table.name not in self._guards])
        for (name, _), rows in updates.items():
            conn.execute(self._statements[name].update, rows)
        return lost

    def _attach(self, conn: Connection, entries: list[_Entry]) -> None:
        attached: dict[str, list[dict[str, Any]]] = {}
        for e in entries:
            for table, row in e.attached:
                attached.setdefault(table.name, []).append(row)
        for name, rows in attached.items():
            self._insert(conn, name, rows)

    def _insert(self, conn: Connection, name: str, rows: list[dict[str, Any]]) -> None:
        guard = self._guards.get(name)
        if guard is not None:
            guard.insert(conn, rows)
        else:
            conn.execute(self._statements[name].insert, rows)

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        for last_try in (False, True):
            kept = self._conn is not None
            try:
                conn = self._connection()
                transaction = conn.begin()
                result = work(conn)
            except Exception as error:
                self._disconnect()  # the next transaction starts on a fresh connection
                if kept and not last_try and lost_connection(error):
                    # The server closed the kept connection while it sat idle (a restart):
                    # nothing of this transaction reached a COMMIT, so it is safe to send again.
                    log.info("the writer's connection was closed by the database; reconnecting")
                    continue
                self._raise(error)
            try:
                transaction.commit()
            except Exception as error:
                # Lost during COMMIT, the outcome is unknown: never sent twice.
                self._disconnect()
                self._raise(error)
            return result
        raise AssertionError("unreachable: the last try returns or raises")

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(**IMMEDIATE)
            if self._checkpointer is not None:
                cursor = self._conn.connection.cursor()
                try:
                    cursor.execute(WRITER_PRAGMA)
                finally:
                    cursor.close()
        return self._conn

    def _raise(self, error: Exception) -> NoReturn:
        """Raise `error`, as StoreUnavailable if it says the database cannot be reached."""
        down = unavailable(error, self._engine.url)
        if down is None:
            raise error
        raise down from error

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
