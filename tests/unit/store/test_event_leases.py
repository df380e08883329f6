"""Leases on webhook events: the process whose write made an event delivers it; another takes it
over only once that claim expired, goes on under the same id, and never sends an event before an
earlier one of its prediction that a live process holds. On both databases, processes played by
stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from _databases import execute
from foretell.domain import DeliveryAttempt, DeliveryStatus, OutboxEvent, Prediction
from foretell.store import ClaimLost, PredictionStore

MakePrediction = Callable[..., Prediction]
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PAST = "2000-01-01 00:00:00.000000"


def event(id: str, prediction_id: str, seq: int, name: str = "completed") -> OutboxEvent:
    return OutboxEvent(
        id=id,
        prediction_id=prediction_id,
        event=name,  # type: ignore[arg-type]
        url="http://127.0.0.1:9/hook",
        body=f'{{"id": "{prediction_id}"}}',
        created_at=T0,
        seq=seq,
        queued_at=T0,
    )


def _claims(db_url: str) -> dict[str, str | None]:
    return dict(execute(db_url, "SELECT id, claimed_by FROM webhook_events"))  # type: ignore[arg-type]


def _expire(db_url: str, *ids: str) -> None:
    for id in ids:
        execute(db_url, f"UPDATE webhook_events SET lease_until = '{PAST}' WHERE id = :id", id=id)


async def _with_events(
    store: PredictionStore, make_prediction: MakePrediction, prediction_id: str, *e: OutboxEvent
) -> None:
    await store.write(make_prediction(prediction_id), new=True, events=list(e))


def test_the_writer_of_an_event_holds_it_until_it_settles(
    db_url: str, make_prediction: MakePrediction
) -> None:
    e = event("msg_1", "p1", seq=3)

    async def scenario() -> tuple[str, dict[str, str | None]]:
        store = await PredictionStore.open(db_url)
        try:
            await _with_events(store, make_prediction, "p1", e)
            held = _claims(db_url)
            e.status, e.attempts = DeliveryStatus.DELIVERED, 1
            await store.outbox.record(e, None)
            return store.instance, held
        finally:
            await store.close()

    instance, held = asyncio.run(scenario())
    assert held == {"msg_1": instance}
    assert _claims(db_url) == {"msg_1": None}


def test_only_events_nobody_holds_are_taken_over_in_order_and_once(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> tuple[list[OutboxEvent], list[OutboxEvent], list[OutboxEvent]]:
        a, b, c = [await PredictionStore.open(db_url) for _ in range(3)]
        try:
            await _with_events(a, make_prediction, "p1", event("e2", "p1", 2), event("e1", "p1", 1))
            await _with_events(a, make_prediction, "p2", event("live", "p2", 1))
            while_live = await b.outbox.take(100)
            _expire(db_url, "e1", "e2")
            taken_b, taken_c = await asyncio.gather(b.outbox.take(100), c.outbox.take(100))
            return while_live, taken_b, taken_c
        finally:
            for store in (a, b, c):
                await store.close()

    while_live, taken_b, taken_c = asyncio.run(scenario())
    assert while_live == []
    taken = sorted([taken_b, taken_c], key=len)
    assert taken[0] == []  # one of them took both (the other found nothing left)
    assert [e.id for e in taken[1]] == ["e1", "e2"]
    assert taken[1][0].status is DeliveryStatus.PENDING


def test_progress_of_an_event_another_process_took_over_is_not_stored(
    db_url: str, make_prediction: MakePrediction
) -> None:
    e = event("msg_1", "p1", seq=3)

    async def scenario() -> tuple[BaseException | None, list[DeliveryAttempt], OutboxEvent]:
        a, b = await PredictionStore.open(db_url), await PredictionStore.open(db_url)
        try:
            await _with_events(a, make_prediction, "p1", e)
            _expire(db_url, "msg_1")
            (taken,) = await b.outbox.take(10)
            e.status, e.attempts = DeliveryStatus.FAILING, 1
            attempt = DeliveryAttempt(
                id="att-1",
                event_id=e.id,
                prediction_id="p1",
                event=e.event,
                number=1,
                at=T0,
                latency_s=0.1,
                status_code=503,
                error=None,
                outcome=DeliveryStatus.FAILING,
            )
            (late,) = await asyncio.gather(a.outbox.record(e, attempt), return_exceptions=True)
            return late, await a.outbox.attempts("p1"), taken
        finally:
            await a.close()
            await b.close()

    late, attempts, taken = asyncio.run(scenario())
    assert isinstance(late, ClaimLost)
    assert attempts == []
    assert taken.id == "msg_1"  # the same webhook-id goes on from the other process
    assert execute(db_url, "SELECT status, attempts FROM webhook_events") == [("pending", 0)]


def test_earlier_events_held_elsewhere_block_and_expired_ones_are_taken_first(
    db_url: str, make_prediction: MakePrediction
) -> None:
    start, done = event("start", "p1", 1, "start"), event("done", "p1", 3)

    async def scenario() -> list[tuple[list[str], bool]]:
        a, b = await PredictionStore.open(db_url), await PredictionStore.open(db_url)
        try:
            await _with_events(a, make_prediction, "p1", start, done)
            _expire(db_url, "done")
            await b.outbox.take(10)  # B took the later event over (its claim had expired)
            seen = []
            ahead = await b.outbox.ahead(done)  # A still holds the earlier one: wait
            seen.append(([e.id for e in ahead.taken], ahead.blocked))
            _expire(db_url, "start")  # A stopped renewing
            ahead = await b.outbox.ahead(done)  # B takes it, to send it first
            seen.append(([e.id for e in ahead.taken], ahead.blocked))
            ahead = await b.outbox.ahead(done)  # nothing before it but B's own
            seen.append(([e.id for e in ahead.taken], ahead.blocked))
            return seen
        finally:
            await a.close()
            await b.close()

    assert asyncio.run(scenario()) == [([], True), (["start"], False), ([], False)]


def test_a_redelivery_claims_the_event_unless_another_process_is_delivering_it(
    db_url: str, make_prediction: MakePrediction
) -> None:
    delivered, sending = event("delivered", "p1", 1), event("sending", "p2", 1)

    async def scenario() -> tuple[bool, bool, str]:
        a, b = await PredictionStore.open(db_url), await PredictionStore.open(db_url)
        try:
            await _with_events(a, make_prediction, "p1", delivered)
            await _with_events(a, make_prediction, "p2", sending)
            delivered.status, delivered.attempts = DeliveryStatus.DELIVERED, 1
            await a.outbox.record(delivered, None)
            delivered.status = DeliveryStatus.PENDING
            return (
                await b.outbox.retake(delivered),
                await b.outbox.retake(sending),  # A holds it, live
                b.instance,
            )
        finally:
            await a.close()
            await b.close()

    again, stolen, b_instance = asyncio.run(scenario())
    assert (again, stolen) == (True, False)
    assert _claims(db_url)["delivered"] == b_instance
    assert execute(db_url, "SELECT status FROM webhook_events WHERE id = 'delivered'") == [
        ("pending",)
    ]


def test_release_hands_back_what_a_stopping_process_holds(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> list[OutboxEvent]:
        a, b = await PredictionStore.open(db_url), await PredictionStore.open(db_url)
        try:
            await _with_events(a, make_prediction, "p1", event("e1", "p1", 1))
            await a.outbox.release()
            renewed = await a.outbox.renew(["e1"])
            assert renewed == 0  # let go: no longer A's to renew
            return await b.outbox.take(10)
        finally:
            await a.close()
            await b.close()

    assert [e.id for e in asyncio.run(scenario())] == ["e1"]


def test_renew_extends_only_this_processs_unsettled_claims(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> tuple[int, list[OutboxEvent]]:
        a, b = await PredictionStore.open(db_url), await PredictionStore.open(db_url)
        try:
            await _with_events(a, make_prediction, "p1", event("e1", "p1", 1))
            await _with_events(b, make_prediction, "p2", event("e2", "p2", 1))
            _expire(db_url, "e1", "e2")
            renewed = await a.outbox.renew(["e1", "e2"])
            return renewed, await b.outbox.take(10)
        finally:
            await a.close()
            await b.close()

    renewed, taken = asyncio.run(scenario())
    assert renewed == 1
    assert [e.id for e in taken] == ["e2"]  # B's own expired one; A's was renewed in time
