"""PredictionStore: durable prediction records, written by group commit and read by id or page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    RowMapping,
    Select,
    and_,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from foretell.domain import OutboxEvent, Prediction, PredictionStatus
from foretell.errors import InvalidRequest
from foretell.store import cursor as cursors
from foretell.store.engine import create_engine, migrate
from foretell.store.environments import EnvironmentStore
from foretell.store.files import FileStore
from foretell.store.keys import KeyStore
from foretell.store.leases import Lease, Leases, PredictionGuard, claim_columns, new_instance
from foretell.store.notify import Listener, listener_for, publish
from foretell.store.outbox import EventGuard, OutboxStore
from foretell.store.reader import Reader
from foretell.store.rows import from_row, to_row
from foretell.store.tables import (
    api_keys,
    environments,
    files,
    predictions,
    webhook_attempts,
    webhook_events,
)
from foretell.store.writer import GroupWriter

MAX_LIMIT = 1000
_Predictions = list[Prediction]  # `list` is shadowed by the method inside the class
_UNFINISHED = (PredictionStatus.PENDING.value, PredictionStatus.PROCESSING.value)


@dataclass(frozen=True)
class Page:
    """One page of a listing, newest first; pass `next_cursor` back for the next (None: the end)."""

    items: list[Prediction]
    next_cursor: str | None


class PredictionStore:
    """Prediction records in any SQLAlchemy database (SQLite in WAL mode by default).

    Writes snapshot the record when called and are committed by one background writer, many
    per transaction; `insert` and `update` return only once their row is committed. Reads run
    on worker threads and see committed rows only: `flush()` first to include writes queued
    with `update_soon`. Webhook events go in with the record change that causes them, in the
    same transaction; `outbox` follows them from there.

    Several processes may share the database: each unfinished record is claimed by the one that
    runs it (`leases`, see store.leases), whose updates land only while it holds the claim
    (else ClaimLost); `notices` hears the others' ends and cancel requests (store.notify).
    """

    def __init__(self, engine: Engine, writer: GroupWriter, lease: Lease) -> None:
        self._engine = engine
        self._writer = writer
        self._reader = Reader(engine)
        self.outbox = OutboxStore(self._reader, writer, lease)
        self.keys = KeyStore(self._reader, writer)
        self.environments = EnvironmentStore(self._reader, writer)
        self.files = FileStore(self._reader, writer)
        self.leases = Leases(writer, lease)
        self.notices: Listener = listener_for(engine, self._reader, writer.transact)

    @classmethod
    async def open(cls, url: str, *, lease_s: float = 15.0) -> PredictionStore:
        """Connect to `url` (creating a SQLite file's folder), migrate to head, start the writer.
        This process claims the records it writes under a new instance id, for `lease_s`."""
        engine = create_engine(url)
        try:
            await asyncio.to_thread(migrate, engine)
        except BaseException:
            engine.dispose()
            raise
        lease = Lease(new_instance(), lease_s)
        tables = (predictions, webhook_events, webhook_attempts, api_keys, environments, files)
        guards = (PredictionGuard(lease), EventGuard(lease))
        return cls(engine, GroupWriter(engine, tables, guards=guards), lease)

    @property
    def instance(self) -> str:
        """This process's id, as its claims on records carry it."""
        return self.leases.instance

    @property
    def commits(self) -> int:
        """How many write transactions have committed (several records share one)."""
        return self._writer.commits

    async def close(self) -> None:
        """Commit whatever is queued, stop the writer and release the database."""
        try:
            await self.notices.close()
            await self._writer.close()
        finally:
            self._reader.close()
            self._engine.dispose()

    async def insert(self, prediction: Prediction) -> None:
        """Store a new record; returns once it is committed, raises if that failed."""
        await self.write(prediction, new=True)

    async def update(self, prediction: Prediction) -> None:
        """Store the record's current state; returns once it is committed."""
        await self.write(prediction, new=False)

    def write(
        self,
        prediction: Prediction,
        *,
        new: bool,
        events: Sequence[OutboxEvent] = (),
        on_commit: Callable[[asyncio.Future[None]], None] | None = None,
    ) -> asyncio.Future[None]:
        """Queue the record as of now (a new row, or the update of one) with the webhook
        `events` it causes; the future resolves once they are committed, together. Cancelling
        it never cancels the commit others share, nor `on_commit`, called when it ends."""
        done = self._writer.put(
            predictions,
            "insert" if new else "update",
            self._row(prediction, new=new),
            wait=True,
            attached=[(webhook_events, self.outbox.new_row(e)) for e in events],
        )
        assert done is not None
        if on_commit is not None:
            done.add_done_callback(on_commit)
        return asyncio.shield(done)

    def insert_soon(self, prediction: Prediction) -> None:
        """Queue a new record (taken now) for the next commit, without waiting."""
        self._writer.put(predictions, "insert", self._row(prediction, new=True), wait=False)

    def update_soon(self, prediction: Prediction, *, release: bool = False) -> None:
        """Queue the record's current state (taken now) for the next commit, without waiting;
        with `release`, this process lets go of it, for any process to take at once."""
        row = self._row(prediction, new=False)
        if release:
            row |= {"claimed_by": None, "lease_until": None}
        self._writer.put(predictions, "update", row, wait=False)

    def _row(self, prediction: Prediction, *, new: bool) -> dict[str, Any]:
        return to_row(prediction, new=new) | claim_columns(
            prediction.status, new=new, instance=self.instance
        )

    async def publish(self, channel: str, prediction_id: str) -> None:
        """Tell every process (this one too) `prediction_id` on `channel` (store.notify)."""
        await self._writer.transact(lambda conn: publish(conn, channel, [prediction_id]))

    async def mark_data_removed(self, prediction_ids: Sequence[str]) -> None:
        """Say on these records that their output files were removed (`data_removed`)."""
        ids = sorted(set(prediction_ids))  # one order for every process: no deadlock
        column = predictions.c.id
        await self._writer.transact(
            lambda conn: conn.execute(
                update(predictions).where(column.in_(ids)).values(data_removed=True)
            )
        )

    async def flush(self) -> None:
        """Wait until every write queued so far is committed; raises the first that failed."""
        await self._writer.flush()

    async def get(self, prediction_id: str) -> Prediction | None:
        """The committed record with this id, or None."""
        rows = await self._read(select(predictions).where(predictions.c.id == prediction_id))
        return from_row(rows[0]) if rows else None

    async def list(
        self,
        *,
        owner: str | None = None,
        name: str | None = None,
        status: PredictionStatus | None = None,
        created_by: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        max_bytes: int | None = None,
    ) -> Page:
        """Records newest first, filtered by any of model owner, name, status and the owner who
        created them, `limit` per page; with `max_bytes`, only as many as fit in that many bytes
        rendered (see `_rendered_bytes`), and always one."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        c = predictions.c
        query = select(predictions)
        if owner is not None:
            query = query.where(c.owner == owner)
        if name is not None:
            query = query.where(c.name == name)
        if status is not None:
            query = query.where(c.status == PredictionStatus(status).value)
        if created_by is not None:
            query = query.where(c.created_by == created_by)
        if cursor is not None:
            query = _after(query, cursor)
        query = query.order_by(c.created_at.desc(), c.id.desc())
        if max_bytes is None:
            rows = await self._read(query.limit(limit + 1))
            items = [from_row(row) for row in rows[:limit]]
            last = (items[-1].created_at, items[-1].id) if len(rows) > limit else None
            return Page(items, cursors.encode(*last) if last else None)
        # Sizes first, from the database, so that records past the page's bytes are never
        # loaded: a thousand 20 MB records were all read, parsed and rendered into one answer.
        sizes = query.with_only_columns(c.id, c.created_at, _rendered_bytes())
        sized = await self._read(sizes.limit(limit + 1))
        taken = _fitting([row["size"] for row in sized[:limit]], max_bytes)
        ids = [row["id"] for row in sized[:taken]]
        rows = await self._read(query.where(c.id.in_(ids))) if ids else []
        items = [from_row(row) for row in rows]
        more = len(sized) > taken
        last = (sized[taken - 1]["created_at"], sized[taken - 1]["id"]) if more else None
        return Page(items, cursors.encode(*last) if last else None)

    async def unfinished(self) -> _Predictions:
        """Records still pending or processing, oldest first: the work a restart must resume."""
        query = (
            select(predictions)
            .where(predictions.c.status.in_(_UNFINISHED))
            .order_by(predictions.c.created_at, predictions.c.id)
        )
        return [from_row(row) for row in await self._read(query)]

    async def _read(self, query: Select[Any]) -> Sequence[RowMapping]:
        return await self._reader.rows(query)


class _Bytes(FunctionElement[int]):
    """A text column's length in bytes (of its UTF-8), not in characters: what it renders to."""

    type = Integer()
    inherit_cache = True


@compiles(_Bytes)
def _octet_length(element: _Bytes, compiler: SQLCompiler, **kw: Any) -> str:
    return f"octet_length({compiler.process(element.clauses, **kw)})"


@compiles(_Bytes, "sqlite")
def _blob_length(element: _Bytes, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite has octet_length only from 3.43; a text cast to BLOB is its UTF-8 bytes.
    return f"length(CAST({compiler.process(element.clauses, **kw)} AS BLOB))"


# A record's fields besides its documents, as the native API renders them (id, model,
# timestamps, durations, status, urls): about 800 bytes; counted high so a page stays under.
_RECORD_BYTES = 1024


def _rendered_bytes() -> ColumnElement[int]:
    """About the bytes a record renders to: its stored JSON documents and logs (stored as they
    are rendered) and the rest of its fields; only escapes in its logs make it more."""
    c = predictions.c
    documents = (c.input, c.output, c.error, c.webhook, c.logs)
    total: ColumnElement[int] = literal(_RECORD_BYTES, Integer())
    for column in documents:
        total = total + func.coalesce(_Bytes(column), 0)
    return total.label("size")


def _fitting(sizes: Sequence[int], max_bytes: int) -> int:
    """How many of `sizes`, from the first, fit in `max_bytes` together (at least one)."""
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if total > max_bytes and count > 0:
            return count
    return len(sizes)


def _after(query: Select[tuple[object, ...]], cursor: str) -> Select[tuple[object, ...]]:
    created_at, last_id = cursors.decode(cursor)
    c = predictions.c
    return query.where(
        or_(c.created_at < created_at, and_(c.created_at == created_at, c.id < last_id))
    )
