"""Outbox: which events a prediction's change causes, delivering them only once committed,
the webhook_status shown on records, the delivery log, and redelivery — over the fake store
and receiver of webhook_fakes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from webhook_fakes import T0, Harness, event

from foretell.domain import (
    DeliveryStatus,
    Prediction,
    PredictionStatus,
    WebhookStatus,
)
from foretell.errors import NoWebhookEvent
from foretell.webhooks.outbox import Outbox
from foretell.webhooks.policy import RetryPolicy

pytestmark = pytest.mark.anyio

URL = "http://receiver.test/hook"


def prediction(
    id: str = "p1", *, events: list[str] | None = None, status: str = "processing", **fields: Any
) -> Prediction:
    hook = None if events is None else {"url": URL, "events": events}
    return Prediction(
        id=id,
        owner="acme",
        name="echo",
        version_number=1,
        status=PredictionStatus(status),
        input={"text": "x"},
        created_at=T0,
        updated_at=T0,
        webhook=hook,
        **fields,
    )


def render(p: Prediction) -> str:
    """Stands in for the API's record: enough to see which state an event carried."""
    return f'{{"id": "{p.id}", "status": "{p.status}", "webhook_status": "{p.webhook_status}"}}'


async def outbox_over(harness: Harness, policy: RetryPolicy | None = None) -> Outbox:
    deliveries = await harness.open(policy)
    return Outbox(harness.store, deliveries, render, clock=harness.clock.now)


async def test_only_the_events_the_webhook_asks_for_are_made_in_their_order(
    harness: Harness,
) -> None:
    outbox = await outbox_over(harness)
    p = prediction(events=["start", "completed"], attempts=1, webhook_status=WebhookStatus.PENDING)

    made = outbox.events(p, "start", "output", "logs", "completed")

    assert [e.event for e in made] == ["start", "completed"]
    assert [e.seq for e in made] == [4 + 0, 4 + 3], "(run, rank): a re-run's events come later"
    assert {e.url for e in made} == {URL}
    assert len({e.id for e in made}) == 2
    # The record as a GET shows it now, without a webhook_status left from an earlier read.
    assert {e.body for e in made} == {render(replace(p, webhook_status=None))}
    assert all(e.queued_at == e.created_at == T0 for e in made)


async def test_a_running_predictions_progress_events_keep_the_order_they_were_made_in(
    harness: Harness,
) -> None:
    outbox = await outbox_over(harness)
    p = prediction(events=["start", "output", "logs", "completed"], attempts=1)
    made = outbox.events(p, "start")
    for names in [("output", "logs"), ("logs",), ("output",)]:  # a save every half second
        harness.clock.wall += timedelta(seconds=0.5)
        progress = outbox.events(p, *names, progress=True)
        assert [e.event for e in progress] == [names[0]], "one event carries the record"
        made += progress
    harness.clock.wall += timedelta(seconds=0.5)
    p.status = PredictionStatus.SUCCEEDED
    made += outbox.events(p, "logs", "output", "completed")

    in_order = sorted(made, key=lambda e: (e.seq, e.created_at))
    assert [e.event for e in in_order] == [e.event for e in made]
    progress, end = ["output", "logs", "output"], ["logs", "output", "completed"]
    assert [e.event for e in made] == ["start", *progress, *end]


async def test_a_prediction_without_a_webhook_or_not_asking_makes_no_events(
    harness: Harness,
) -> None:
    outbox = await outbox_over(harness)

    assert outbox.events(prediction(events=None), "start", "completed") == []
    assert outbox.events(prediction(events=["completed"]), "start") == []


async def test_events_are_sent_once_their_write_commits(harness: Harness) -> None:
    outbox = await outbox_over(harness)
    made = outbox.events(prediction(events=["completed"]), "completed")
    committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    committed.add_done_callback(outbox.on_commit(made))

    await asyncio.sleep(0)
    assert harness.receiver.received == [], "nothing before the commit"
    committed.set_result(None)
    (stored,) = await harness.store.settled(made[0].id)

    assert stored.status is DeliveryStatus.DELIVERED
    assert [r.webhook_id for r in harness.receiver.received] == [made[0].id]


@pytest.mark.parametrize("outcome", ["failed", "canceled"])
async def test_events_of_a_write_that_failed_are_forgotten_never_sent(
    harness: Harness, outcome: str
) -> None:
    outbox = await outbox_over(harness)
    deliveries = harness.opened[0]
    made = outbox.events(prediction(events=["completed"]), "completed")
    assert deliveries.live(made[0].id) is not None, "known while being committed"
    write: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    write.add_done_callback(outbox.on_commit(made))

    if outcome == "failed":
        write.set_exception(OSError("disk full"))
        write.exception()  # retrieved: the writer logged it
    else:
        write.cancel()
    await asyncio.sleep(0)

    assert deliveries.live(made[0].id) is None
    assert harness.receiver.received == []


async def test_records_show_their_webhooks_status(harness: Harness) -> None:
    outbox = await outbox_over(harness)
    dead = event("p-dead")
    dead.status = DeliveryStatus.DEAD
    delivered = event("p-ok")
    delivered.status = DeliveryStatus.DELIVERED
    for e in (dead, delivered):
        harness.store.stored[e.id] = e
    records = [
        prediction("p-none"),
        prediction("p-dead", events=["completed"], status="succeeded"),
        prediction("p-ok", events=["completed"], status="succeeded"),
        prediction("p-waiting", events=["completed"]),
    ]

    await outbox.show_status(records)

    assert [r.webhook_status for r in records] == [
        WebhookStatus.NONE,
        WebhookStatus.DEAD,
        WebhookStatus.DELIVERED,
        WebhookStatus.PENDING,
    ]


async def test_the_log_lists_each_event_with_its_attempts_in_order(harness: Harness) -> None:
    harness.receiver.answers[URL] = [503, 204]
    outbox = await outbox_over(harness)
    made = outbox.events(prediction(events=["start", "completed"]), "start", "completed")
    harness.opened[0].enqueue(made)
    await harness.store.settled(*(e.id for e in made))

    log = await outbox.log("p1")

    assert [(e.event, [a.status_code for a in attempts]) for e, attempts in log] == [
        ("start", [503, 204]),
        ("completed", [204]),
    ]


async def test_redeliver_sends_the_last_event_again_under_its_id_in_a_fresh_window(
    harness: Harness,
) -> None:
    harness.receiver.answers[URL] = [503]  # down for longer than the retry window
    outbox = await outbox_over(harness, RetryPolicy(window_s=60.0, first_delay_s=1.0))
    p = prediction(events=["completed"], status="succeeded")
    (made,) = outbox.events(p, "completed")
    harness.opened[0].enqueue([made])
    (dead,) = await harness.store.settled(made.id)
    assert dead.status is DeliveryStatus.DEAD
    tried = len(harness.receiver.received)
    harness.store.forget_settled(made.id)
    harness.clock.wall += timedelta(days=2)
    harness.receiver.answers[URL] = [503, 204]  # back, busy once more

    redelivered_at = harness.clock.now()
    again = await outbox.redeliver(p)
    (stored,) = await harness.store.settled(made.id)

    assert again.id == made.id
    assert again.queued_at == redelivered_at
    assert stored.status is DeliveryStatus.DELIVERED, "retried: its window starts again"
    assert [r.webhook_id for r in harness.receiver.received[tried:]] == [made.id, made.id]


async def test_redeliver_of_an_event_still_being_sent_is_that_delivery(
    harness: Harness,
) -> None:
    hanging = asyncio.Event()
    harness.receiver.answers[URL] = [hanging]
    outbox = await outbox_over(harness)
    p = prediction(events=["completed"], status="succeeded")
    (made,) = outbox.events(p, "completed")
    harness.store.stored[made.id] = replace(made)  # stored with the prediction's write
    harness.opened[0].enqueue([made])
    await harness.receiver.until(lambda r: len(r.received) == 1)

    again = await outbox.redeliver(p)
    hanging.set()
    await harness.store.settled(made.id)

    assert again is made
    assert len(harness.receiver.received) == 1, "no second copy"


async def test_redeliver_without_a_webhook_or_any_event_says_why(harness: Harness) -> None:
    outbox = await outbox_over(harness)

    with pytest.raises(NoWebhookEvent, match="it was created without a webhook"):
        await outbox.redeliver(prediction(events=None))
    with pytest.raises(NoWebhookEvent) as none_yet:
        await outbox.redeliver(prediction(events=["start", "completed"], status="processing"))
    assert str(none_yet.value) == (
        "prediction 'p1' has no webhook event to redeliver: it is processing and has sent none of "
        "the events its webhook asks for (start, completed) yet"
    )
