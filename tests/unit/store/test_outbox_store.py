"""The webhook outbox in the store: events committed with their record change or not at all,
delivery progress merged into queued rows, attempts read back in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from foretell.domain import DeliveryAttempt, DeliveryStatus, OutboxEvent, Prediction
from foretell.store import PredictionStore

MakePrediction = Callable[..., Prediction]
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(id: str, prediction_id: str, name: str = "completed", seq: int = 0) -> OutboxEvent:
    return OutboxEvent(
        id=id,
        prediction_id=prediction_id,
        event=name,  # type: ignore[arg-type]
        url="http://127.0.0.1:9/hook?x=1",
        body=f'{{"id": "{prediction_id}"}}',
        created_at=T0,
        seq=seq,
        queued_at=T0,
    )


def attempt(
    e: OutboxEvent, number: int, outcome: DeliveryStatus, code: int | None
) -> DeliveryAttempt:
    return DeliveryAttempt(
        id=f"{e.id}-{number}",
        event_id=e.id,
        prediction_id=e.prediction_id,
        event=e.event,
        number=number,
        at=T0 + timedelta(seconds=number),
        latency_s=0.01 * number,
        status_code=code,
        error=None if code else "could not connect",
        outcome=outcome,
    )


def test_events_commit_with_their_record_and_come_back_in_order(
    db_url: str, make_prediction: MakePrediction
) -> None:
    p = make_prediction("p1", webhook={"url": "http://127.0.0.1:9/hook", "events": ["start"]})
    start, done = event("msg_a", "p1", "start", seq=1), event("msg_b", "p1", "completed", seq=2)

    async def scenario() -> list[OutboxEvent]:
        store = await PredictionStore.open(db_url)
        try:
            commits = store.commits
            await store.write(p, new=True, events=[done, start])
            assert store.commits == commits + 1, "one transaction for the record and its events"
            return await store.outbox.events("p1")
        finally:
            await store.close()

    stored = asyncio.run(scenario())
    assert stored == [start, done]
    assert not any(e.status.settled for e in stored), "both still to deliver"


def test_a_failed_record_write_stores_none_of_its_events(
    db_url: str, make_prediction: MakePrediction
) -> None:
    p = make_prediction("dup")

    async def scenario() -> list[OutboxEvent]:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(p)
            with pytest.raises(IntegrityError):
                await store.write(p, new=True, events=[event("msg_x", "dup")])
            return await store.outbox.events("dup")
        finally:
            await store.close()

    assert asyncio.run(scenario()) == []


def test_progress_and_attempts_are_recorded_together_and_listed_in_order(
    db_url: str, make_prediction: MakePrediction
) -> None:
    p = make_prediction("p2")
    e = event("msg_c", "p2")

    async def scenario() -> tuple[
        list[OutboxEvent], list[DeliveryAttempt], dict[str, list[DeliveryStatus]]
    ]:
        store = await PredictionStore.open(db_url)
        try:
            await store.write(p, new=True, events=[e])
            e.attempts, e.status = 1, DeliveryStatus.FAILING
            e.next_attempt_at = e.last_attempt_at = T0 + timedelta(seconds=2)
            first = attempt(e, 1, DeliveryStatus.FAILING, None)
            # Not awaited: both wait in one batch, and the second merges into the first.
            pending = store.outbox.record(e, first)
            e.attempts, e.status, e.next_attempt_at = 2, DeliveryStatus.DELIVERED, None
            await store.outbox.record(e, attempt(e, 2, DeliveryStatus.DELIVERED, 204))
            await pending
            statuses = await store.outbox.statuses(["p2", "nobody"])
            return await store.outbox.events("p2"), await store.outbox.attempts("p2"), statuses
        finally:
            await store.close()

    (stored,), attempts, statuses = asyncio.run(scenario())
    assert stored.status is DeliveryStatus.DELIVERED
    assert stored.attempts == 2
    assert stored.next_attempt_at is None
    assert stored.body == e.body, "a progress update leaves the body alone"
    assert [(a.number, a.status_code, a.outcome) for a in attempts] == [
        (1, None, DeliveryStatus.FAILING),
        (2, 204, DeliveryStatus.DELIVERED),
    ]
    assert statuses == {"p2": [DeliveryStatus.DELIVERED]}


def test_an_event_inserted_and_updated_in_one_batch_is_one_full_row(
    db_url: str, make_prediction: MakePrediction
) -> None:
    p = make_prediction("p3")
    e = event("msg_d", "p3")

    async def scenario() -> list[OutboxEvent]:
        store = await PredictionStore.open(db_url)
        try:
            inserted = store.write(p, new=True, events=[e])
            e.status = DeliveryStatus.DEAD
            await store.outbox.record(e, None)
            await inserted
            return await store.outbox.events("p3")
        finally:
            await store.close()

    (stored,) = asyncio.run(scenario())
    assert stored.status is DeliveryStatus.DEAD
    assert stored.url == e.url
