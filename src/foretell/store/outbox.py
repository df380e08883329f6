"""OutboxStore: webhook events and their delivery attempts, sharing the predictions' writer.

Several API processes share the outbox: each unsettled event is claimed by the one process that
delivers it (`claimed_by`, `lease_until` on the database's clock, as predictions are, see
store.leases): the process whose write made it, or one that took it over after that claim
expired (`take`, FOR UPDATE SKIP LOCKED on PostgreSQL), which goes on under the same webhook-id.
Progress lands only while the claim is held (`EventGuard`, else ClaimLost), and settling clears
it. One prediction's events go out in order whichever process holds which: before sending one, a
process takes the earlier unsettled ones it can, and waits while another process holds any
(`ahead`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)

from foretell.domain import DeliveryAttempt, DeliveryStatus, OutboxEvent
from foretell.store.leases import RENEW_CHUNK, Lease, db_time
from foretell.store.reader import Reader
from foretell.store.tables import webhook_attempts, webhook_events
from foretell.store.writer import GroupWriter

_UNSETTLED = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILING.value)
_SETTLED = frozenset(s.value for s in DeliveryStatus if s.settled)
_CLAIM = ("claimed_by", "lease_until")
_KEY, _HOLDER = "where_key", "holder"


def event_row(e: OutboxEvent) -> dict[str, Any]:
    """The whole row of a new event (its columns are its fields)."""
    return {**asdict(e), **_progress(e)}


def _progress(e: OutboxEvent) -> dict[str, Any]:
    """The columns a delivery changes."""
    return {
        "id": e.id,
        "status": e.status.value,
        "queued_at": e.queued_at or e.created_at,
        "attempts": e.attempts,
        "next_attempt_at": e.next_attempt_at,
        "last_attempt_at": e.last_attempt_at,
    }


def _event(row: Mapping[Any, Any]) -> OutboxEvent:
    fields = {k: v for k, v in row.items() if k not in _CLAIM}
    return OutboxEvent(**{**fields, "status": DeliveryStatus(row["status"])})


def _attempt_row(a: DeliveryAttempt) -> dict[str, Any]:
    return {**asdict(a), "outcome": a.outcome.value}


def _attempt(row: Mapping[Any, Any]) -> DeliveryAttempt:
    return DeliveryAttempt(**{**row, "outcome": DeliveryStatus(row["outcome"])})


@dataclass(frozen=True, slots=True)
class Ahead:
    """What stands before an event of a prediction: the earlier unsettled events just `taken`
    (this process delivers them first), and whether another process holds any (`blocked`)."""

    taken: list[OutboxEvent]
    blocked: bool


def _claimable() -> ColumnElement[bool]:
    c = webhook_events.c
    return and_(
        c.status.in_(_UNSETTLED),
        or_(c.claimed_by.is_(None), c.lease_until.is_(None), c.lease_until < db_time()),
    )


def _order(events: Iterable[OutboxEvent]) -> list[OutboxEvent]:
    return sorted(events, key=lambda e: (e.prediction_id, e.seq, e.created_at, e.id))


class EventGuard:
    """How the group writer writes webhook events: a new one is claimed by this process, which
    delivers it; progress lands only while this process still holds it (store.writer.Guard)."""

    table = webhook_events

    def __init__(self, lease: Lease) -> None:
        self._lease = lease
        c = webhook_events.c
        self._claiming = insert(webhook_events).values(lease_until=db_time(lease.seconds))
        self._plain = insert(webhook_events)
        self._update = update(webhook_events).where(
            c.id == bindparam(_KEY), c.claimed_by == bindparam(_HOLDER)
        )

    def insert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        claimed = [
            {k: v for k, v in r.items() if k != "lease_until"}
            for r in rows
            if r.get("claimed_by") is not None
        ]
        free = [
            {**r, "claimed_by": None, "lease_until": None} for r in rows if not r.get("claimed_by")
        ]
        if claimed:
            conn.execute(self._claiming, claimed)
        if free:
            conn.execute(self._plain, free)

    def update(self, conn: Connection, rows: list[dict[str, Any]]) -> list[bool]:
        held = []
        for row in rows:
            params = {k: v for k, v in row.items() if k != "id"}
            params[_KEY], params[_HOLDER] = row["id"], self._lease.instance
            held.append(conn.execute(self._update, params).rowcount == 1)
        return held


class OutboxStore:
    """Events are inserted with their prediction's row (`PredictionStore.write(events=…)`),
    claimed by this process (`new_row`); this records what happens to them afterwards, takes
    over the ones whose claim expired, and reads them back."""

    def __init__(self, reader: Reader, writer: GroupWriter, lease: Lease) -> None:
        self._reader = reader
        self._writer = writer
        self._lease = lease

    def new_row(self, event: OutboxEvent) -> dict[str, Any]:
        """The row of a new event, claimed by this process: it delivers what it writes."""
        return {**event_row(event), "claimed_by": self._lease.instance}

    def record(self, event: OutboxEvent, attempt: DeliveryAttempt | None) -> asyncio.Future[None]:
        """Store the event's delivery progress and the attempt that made it, in one
        transaction; the future resolves once committed, or fails with ClaimLost if another
        process took the event over (the attempt is then not stored either). Settling it
        lets go of its claim."""
        attached = [] if attempt is None else [(webhook_attempts, _attempt_row(attempt))]
        row = _progress(event)
        if event.status.settled:
            row |= {"claimed_by": None, "lease_until": None}
        done = self._writer.put(webhook_events, "update", row, wait=True, attached=attached)
        assert done is not None
        return asyncio.shield(done)

    async def take(self, limit: int) -> list[OutboxEvent]:
        """Claim up to `limit` unsettled events nobody holds (their claim expired, or they have
        none), by prediction and in order: this process delivers them now."""
        return await self._writer.transact(lambda conn: self._claim(conn, None, limit))

    async def renew(self, ids: Collection[str]) -> int:
        """Extend this process's claims on the unsettled events among `ids`; how many it held."""
        chosen = list(ids)
        if not chosen:
            return 0
        return await self._writer.transact(lambda conn: self._renew(conn, chosen))

    async def ahead(self, event: OutboxEvent) -> Ahead:
        """Take the earlier unsettled events of `event`'s prediction that nobody holds, and say
        whether another process holds any: `event` may go out only when none is left."""
        rows = await self._read(select(webhook_events.c.claimed_by).where(_earlier(event)))
        if all(row["claimed_by"] == self._lease.instance for row in rows):
            return Ahead([], False)  # the usual case, read without a write: none, or all ours
        return await self._writer.transact(lambda conn: self._ahead(conn, event))

    async def retake(self, event: OutboxEvent) -> bool:
        """Claim `event` to send it again (a redelivery), its progress as `event` now has it;
        False if another process is delivering it (its claim is live)."""
        c = webhook_events.c
        me = self._lease.instance
        statement = (
            update(webhook_events)
            .where(
                c.id == event.id,
                or_(
                    c.claimed_by.is_(None),
                    c.claimed_by == me,
                    c.lease_until.is_(None),
                    c.lease_until < db_time(),
                ),
            )
            .values(
                **{k: v for k, v in _progress(event).items() if k != "id"},
                claimed_by=me,
                lease_until=db_time(self._lease.seconds),
            )
        )
        count = await self._writer.transact(lambda conn: conn.execute(statement).rowcount)
        return bool(count == 1)

    async def release(self) -> None:
        """Let go of every unsettled event this process holds, for another to take at once
        (a stop); what is queued to be written is written first."""
        c = webhook_events.c
        statement = (
            update(webhook_events)
            .where(c.claimed_by == self._lease.instance, c.status.in_(_UNSETTLED))
            .values(claimed_by=None, lease_until=None)
        )
        await self._writer.flush()
        await self._writer.transact(lambda conn: conn.execute(statement))

    def _claim(
        self, conn: Connection, where: ColumnElement[bool] | None, limit: int
    ) -> list[OutboxEvent]:
        c = webhook_events.c
        pick = select(c.id).where(_claimable())
        if where is not None:
            pick = pick.where(where)
        pick = pick.order_by(c.prediction_id, c.seq, c.created_at).limit(limit)
        statement = (
            update(webhook_events)
            .where(c.id.in_(pick.with_for_update(skip_locked=True).scalar_subquery()))
            .values(claimed_by=self._lease.instance, lease_until=db_time(self._lease.seconds))
            .returning(*webhook_events.c)
        )
        return _order(_event(row) for row in conn.execute(statement).mappings().all())

    def _renew(self, conn: Connection, ids: list[str]) -> int:
        c = webhook_events.c
        statement = (
            update(webhook_events)
            .where(
                c.claimed_by == self._lease.instance,
                c.status.in_(_UNSETTLED),
                c.id.in_(bindparam("ids", expanding=True)),
            )
            .values(lease_until=db_time(self._lease.seconds))
        )
        renewed = 0
        for start in range(0, len(ids), RENEW_CHUNK):
            renewed += conn.execute(statement, {"ids": ids[start : start + RENEW_CHUNK]}).rowcount
        return renewed

    def _ahead(self, conn: Connection, event: OutboxEvent) -> Ahead:
        c = webhook_events.c
        earlier = _earlier(event)
        taken = self._claim(conn, earlier, limit=1000)
        others = select(func.count()).where(
            earlier, or_(c.claimed_by.is_(None), c.claimed_by != self._lease.instance)
        )
        return Ahead(taken, bool(conn.execute(others).scalar_one()))

    async def events(self, prediction_id: str) -> list[OutboxEvent]:
        """One prediction's events in the order they happened."""
        query = (
            select(webhook_events)
            .where(webhook_events.c.prediction_id == prediction_id)
            .order_by(webhook_events.c.seq, webhook_events.c.created_at)
        )
        return [_event(row) for row in await self._read(query)]

    async def statuses(self, prediction_ids: Iterable[str]) -> dict[str, list[DeliveryStatus]]:
        """Each prediction's events' delivery statuses in the order they were sent (predictions
        without events left out)."""
        ids = list(prediction_ids)
        if not ids:
            return {}
        c = webhook_events.c
        query = (
            select(c.prediction_id, c.status)
            .where(c.prediction_id.in_(ids))
            .order_by(c.prediction_id, c.seq, c.created_at, c.id)  # as `events` orders them
        )
        found: dict[str, list[DeliveryStatus]] = {}
        for row in await self._read(query):
            found.setdefault(row["prediction_id"], []).append(DeliveryStatus(row["status"]))
        return found

    async def attempts(self, prediction_id: str) -> list[DeliveryAttempt]:
        """Every delivery attempt of a prediction's events, oldest first."""
        c = webhook_attempts.c
        query = (
            select(webhook_attempts)
            .where(c.prediction_id == prediction_id)
            .order_by(c.at, c.number)
        )
        return [_attempt(row) for row in await self._read(query)]

    async def _read(self, query: Select[Any]) -> Sequence[RowMapping]:
        return await self._reader.rows(query)


def _earlier(event: OutboxEvent) -> ColumnElement[bool]:
    """The unsettled events of `event`'s prediction that come before it."""
    c = webhook_events.c
    return and_(
        c.prediction_id == event.prediction_id,
        c.status.in_(_UNSETTLED),
        c.id != event.id,
        or_(c.seq < event.seq, and_(c.seq == event.seq, c.created_at < event.created_at)),
    )
