"""OutboxStore: webhook events and their delivery attempts, sharing the predictions' writer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import RowMapping, Select, select

from foretell.domain import DeliveryAttempt, DeliveryStatus, OutboxEvent
from foretell.store.reader import Reader
from foretell.store.tables import webhook_attempts, webhook_events
from foretell.store.writer import GroupWriter

_UNSETTLED = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILING.value)


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
    return OutboxEvent(**{**row, "status": DeliveryStatus(row["status"])})


def _attempt_row(a: DeliveryAttempt) -> dict[str, Any]:
    return {**asdict(a), "outcome": a.outcome.value}


def _attempt(row: Mapping[Any, Any]) -> DeliveryAttempt:
    return DeliveryAttempt(**{**row, "outcome": DeliveryStatus(row["outcome"])})


class OutboxStore:
    """Events are inserted with their prediction's row (`PredictionStore.write(events=…)`); this
    records what happens to them afterwards and reads them back."""

    def __init__(self, reader: Reader, writer: GroupWriter) -> None:
        self._reader = reader
        self._writer = writer

    def record(self, event: OutboxEvent, attempt: DeliveryAttempt | None) -> asyncio.Future[None]:
        """Store the event's delivery progress and the attempt that made it, in one
        transaction; the future resolves once committed."""
        attached = [] if attempt is None else [(webhook_attempts, _attempt_row(attempt))]
        done = self._writer.put(
            webhook_events, "update", _progress(event), wait=True, attached=attached
        )
        assert done is not None
        return asyncio.shield(done)

    async def unsettled(self) -> list[OutboxEvent]:
        """Events still to deliver (never tried, or failing), oldest first."""
        query = (
            select(webhook_events)
            .where(webhook_events.c.status.in_(_UNSETTLED))
            .order_by(webhook_events.c.seq, webhook_events.c.created_at)
        )
        return [_event(row) for row in await self._read(query)]

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
