"""Leases: which API process runs each unfinished prediction, until when (the database's clock).

A process claims what it inserts (`claimed_by` its instance id, `lease_until` now + lease_s),
renews the claims of everything it runs in one statement a tick (`Leases.renew`), and writes a
prediction only while it still holds it (`PredictionGuard`, through the group writer): an update
that finds the row claimed by another process changes nothing and ends as ClaimLost. The
terminal write clears the claim, and announces the end (store.notify.DONE) in its transaction.

A lease not renewed in time has expired: any process may take the prediction (`claim_expired`,
`claim`) and resume it. Rows without a claim (from before leases, or handed back by a stop) are
taken at once. Times are the database's (`now()`, SQLite's 'now'), never a machine's own, so a
machine whose clock runs ahead cannot take live work.

PostgreSQL: takers skip rows another transaction is taking (FOR UPDATE SKIP LOCKED), so any
number take side by side and no row is taken twice. SQLite: its one write lock (BEGIN IMMEDIATE)
lets one process at a time take; all run on this process's writer thread (`GroupWriter.transact`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    bindparam,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from foretell.domain import Prediction, PredictionStatus
from foretell.store import notify, raw
from foretell.store.rows import from_row
from foretell.store.tables import UTCDateTime, predictions
from foretell.store.writer import GroupWriter

UNFINISHED = (PredictionStatus.PENDING.value, PredictionStatus.PROCESSING.value)
_ENDED = frozenset(s.value for s in PredictionStatus if s.terminal)
# Ids per renewal statement: within both databases' limits on bound parameters (SQLite 32766).
RENEW_CHUNK = 5000
_WHERE = ("id", "claimed_by")  # a guarded update's row: this one, while this process holds it


def new_instance() -> str:
    """A new API process's id: what its claims carry."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Lease:
    """This process's `instance` id, and how long a claim lasts unrenewed (`seconds`)."""

    instance: str
    seconds: float

    @property
    def renew_every_s(self) -> float:
        """Three renewals a lease: two may fail (a busy or restarting database) before it lapses."""
        return self.seconds / 3

    @property
    def take_every_s(self) -> float:
        """How often to look for expired leases: work of a dead process waits at most this
        long past its lease."""
        return self.seconds / 2


class _DbTime(FunctionElement[datetime]):
    """The database's clock now, plus a number of seconds."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(_DbTime, "postgresql")
def _postgres_time(element: _DbTime, compiler: SQLCompiler, **kw: Any) -> str:
    return f"now() + make_interval(secs => {compiler.process(element.clauses, **kw)})"


@compiles(_DbTime, "sqlite")
def _sqlite_time(element: _DbTime, compiler: SQLCompiler, **kw: Any) -> str:
    # The text UTCDateTime stores on SQLite ('YYYY-MM-DD HH:MM:SS.fff'), so they compare as text.
    seconds = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', ({seconds}) || ' seconds')"


@compiles(_DbTime)
def _other_time(element: _DbTime, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"leases need SQLite or PostgreSQL, not {compiler.dialect.name}")


def db_time(seconds: float = 0.0) -> ColumnElement[datetime]:
    """The database's time `seconds` from now."""
    return _DbTime(literal(float(seconds), Float()))


def _expired() -> ColumnElement[bool]:
    c = predictions.c
    return or_(c.claimed_by.is_(None), c.lease_until.is_(None), c.lease_until < db_time())


class PredictionGuard:
    """How the group writer writes predictions: inserts claim the unfinished ones; an update
    lands only where this process still holds the row (store.writer.Guard). Through the driver
    itself (store.raw): these are the rows every prediction writes, twice or more."""

    table = predictions

    def __init__(self, lease: Lease) -> None:
        self._lease = lease
        self._columns: raw.Columns | None = None
        # SQL and tuple maker by (kind, the row's columns): rows of one shape share both.
        self._shapes: dict[tuple[str, tuple[str, ...]], tuple[str, raw.Tuples]] = {}

    def insert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        batches: dict[str, tuple[raw.Tuples, list[tuple[Any, ...]]]] = {}
        for row in rows:
            if row.get("claimed_by") is None:
                row = {**row, "claimed_by": None, "lease_until": None}
                sql, tuples = self._shape(conn, "free", row)
            else:
                sql, tuples = self._shape(conn, "claiming", row)
            batches.setdefault(sql, (tuples, []))[1].append(tuples(row))
        columns = self._columns_for(conn)
        for sql, (tuples, params) in batches.items():
            if conn.dialect.name == "postgresql":
                with raw.driver_cursor(conn, sql) as cursor:
                    cursor.execute(sql, columns.arrays(tuples.names, params))
            else:
                raw.execute_many(conn, sql, params)

    def update(self, conn: Connection, rows: list[dict[str, Any]]) -> list[bool]:
        # Each row's own outcome: a batch's summed rowcount could not say which row was lost.
        held: list[bool] = [False] * len(rows)
        batches: dict[str, tuple[raw.Tuples, list[int], list[tuple[Any, ...]]]] = {}
        for index, row in enumerate(rows):
            sql, tuples = self._shape(conn, "update", row)
            _, indexes, params = batches.setdefault(sql, (tuples, [], []))
            indexes.append(index)
            params.append((*tuples(row), row["id"], self._lease.instance))
        for sql, (tuples, indexes, params) in batches.items():
            names = (*tuples.names, *_WHERE)
            landed = self._each_row(conn, sql, names, params)
            for index, kept in zip(indexes, landed, strict=True):
                held[index] = kept
        ended = [
            row["id"]
            for row, landed in zip(rows, held, strict=True)
            if landed and row.get("status") in _ENDED
        ]
        if ended:  # heard by other processes only if this transaction commits
            notify.publish(conn, notify.DONE, ended)
        return held

    def _each_row(
        self, conn: Connection, sql: str, names: tuple[str, ...], params: list[tuple[Any, ...]]
    ) -> list[bool]:
        """Run the UPDATE `sql` for each tuple of `params`; whether each changed its row."""
        with raw.driver_cursor(conn, sql) as cursor:
            if conn.dialect.name == "postgresql":
                # One statement for all: it returns the id of each row it changed.
                cursor.execute(sql, self._columns_for(conn).arrays(names, params))
                changed = {id for (id,) in cursor.fetchall()}
                return [values[-2] in changed for values in params]  # (..., id, holder)
            landed = []
            for values in params:  # SQLite: a statement from its cache, no round trip
                cursor.execute(sql, values)
                landed.append(cursor.rowcount == 1)
            return landed

    def _columns_for(self, conn: Connection) -> raw.Columns:
        if self._columns is None:
            self._columns = raw.Columns(predictions, conn.dialect)
        return self._columns

    def _shape(self, conn: Connection, kind: str, row: dict[str, Any]) -> tuple[str, raw.Tuples]:
        key = (kind, tuple(row))
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = self._new_shape(conn, kind, key[1])
        return shape

    def _new_shape(
        self, conn: Connection, kind: str, keys: tuple[str, ...]
    ) -> tuple[str, raw.Tuples]:
        columns = self._columns_for(conn)
        arrays = conn.dialect.name == "postgresql"  # one statement a batch (store.raw)
        insert = columns.insert_arrays if arrays else columns.insert
        if kind == "free":
            return insert(keys), columns.tuples(keys)
        if kind == "claiming":  # its lease ends on the database's clock, a full lease from now
            names = tuple(k for k in keys if k != "lease_until")
            until = raw.sql_text(conn, db_time(self._lease.seconds))
            return insert(names, lease_until=until), columns.tuples(names)
        names = tuple(k for k in keys if k != "id")
        update = columns.update_arrays if arrays else columns.update
        return update(names, _WHERE), columns.tuples(names)


class Leases:
    """Renews this process's claims and takes expired ones, on the writer's connection."""

    def __init__(self, writer: GroupWriter, lease: Lease) -> None:
        self._writer = writer
        self.lease = lease

    @property
    def instance(self) -> str:
        return self.lease.instance

    async def renew(self, ids: Collection[str]) -> int:
        """Extend this process's claims on the unfinished predictions among `ids` to a full
        lease from now; how many it still held (one it lost is not among them)."""
        chosen = list(ids)
        if not chosen:
            return 0
        return await self._writer.transact(lambda conn: self._renew(conn, chosen))

    def _renew(self, conn: Connection, ids: list[str]) -> int:
        c = predictions.c
        statement = (
            update(predictions)
            .where(
                c.claimed_by == self.instance,
                c.status.in_(UNFINISHED),
                c.id.in_(bindparam("ids", expanding=True)),
            )
            .values(lease_until=db_time(self.lease.seconds))
        )
        renewed = 0
        for start in range(0, len(ids), RENEW_CHUNK):
            renewed += conn.execute(statement, {"ids": ids[start : start + RENEW_CHUNK]}).rowcount
        return renewed

    async def claim_expired(self, limit: int) -> list[Prediction]:
        """Take up to `limit` unfinished predictions whose lease expired (or that have none),
        oldest first; they are this process's to resume."""
        return await self._writer.transact(lambda conn: self._claim(conn, limit, None))

    async def claim(self, prediction_id: str) -> Prediction | None:
        """Take this one prediction if it is unfinished and its lease expired (or it has none);
        None if it is not (ended, unknown, or still held by a live process)."""
        found = await self._writer.transact(lambda conn: self._claim(conn, 1, prediction_id))
        return found[0] if found else None

    def _claim(self, conn: Connection, limit: int, prediction_id: str | None) -> list[Prediction]:
        c = predictions.c
        pick = select(c.id).where(c.status.in_(UNFINISHED), _expired())
        if prediction_id is not None:
            pick = pick.where(c.id == prediction_id)
        # SKIP LOCKED: rows another process is taking right now are its; SQLite renders none of
        # this clause (its write lock already serialises takers).
        pick = pick.order_by(c.created_at, c.id).limit(limit).with_for_update(skip_locked=True)
        statement = (
            update(predictions)
            .where(c.id.in_(pick.scalar_subquery()))
            .values(claimed_by=self.instance, lease_until=db_time(self.lease.seconds))
            .returning(*predictions.c)
        )
        rows = conn.execute(statement).mappings().all()
        taken = [from_row(row) for row in rows]
        return sorted(taken, key=lambda p: (p.created_at, p.id))


def claim_columns(status: PredictionStatus, *, new: bool, instance: str) -> dict[str, Any]:
    """What a write of a record in `status` sets of its claim: an end (or a hand-back) clears it,
    a new unfinished record is claimed by `instance`, an update of one leaves it be."""
    if status.terminal:
        return {"claimed_by": None, "lease_until": None}
    return {"claimed_by": instance} if new else {}
