"""Deliveries over a fake receiver (httpx.MockTransport), store and clock: what is sent and
signed, which answers are retried and when, the retry window, order within a prediction, and
the limits per receiver. No network, no sleeps: a retry's wait moves the fake clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest
from standardwebhooks import Webhook
from webhook_fakes import T0, FakeOutboxStore, Harness, event

from foretell.domain import DeliveryStatus
from foretell.webhooks.delivery import USER_AGENT, Limits
from foretell.webhooks.policy import RetryPolicy

pytestmark = pytest.mark.anyio

DELIVERED, FAILING, DEAD = DeliveryStatus.DELIVERED, DeliveryStatus.FAILING, DeliveryStatus.DEAD
URL = "http://receiver.test/hook"


async def test_an_event_is_posted_once_signed_with_its_id_and_recorded_delivered(
    harness: Harness,
) -> None:
    deliveries = await harness.open()
    sent = event("p1")

    deliveries.enqueue([sent])
    (stored,) = await harness.store.settled(sent.id)

    (request,) = harness.receiver.received
    assert request.url == URL
    assert request.body == sent.body.encode()
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == sent.id
    assert request.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    signer = Webhook(harness.keys.current().value)
    assert request.headers["webhook-signature"] == signer.sign(sent.id, T0, sent.body)
    assert (stored.status, stored.attempts, stored.next_attempt_at) == (DELIVERED, 1, None)
    (attempt,) = harness.store.attempts_made
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 204, None)
    assert attempt.outcome is DELIVERED
    assert deliveries.live(sent.id) is None


async def test_5xx_answers_are_retried_under_the_same_webhook_id_until_one_succeeds(
    harness: Harness,
) -> None:
    harness.receiver.answers[URL] = [503, 500, 502, 200]
    deliveries = await harness.open()
    sent = event("p1")

    deliveries.enqueue([sent])
    (stored,) = await harness.store.settled(sent.id)

    assert [r.webhook_id for r in harness.receiver.received] == [sent.id] * 4
    assert harness.store.outcomes(sent.id) == [
        (503, FAILING),
        (500, FAILING),
        (502, FAILING),
        (200, DELIVERED),
    ]
    assert stored.attempts == 4
    # Backoff: each wait about the time spent so far, from first_delay_s (1 s) on, jittered
    # into [base/2, base].
    assert len(harness.clock.sleeps) == 3
    assert 0.5 <= harness.clock.sleeps[0] <= 1.0
    assert all(s > 0 for s in harness.clock.sleeps)


@pytest.mark.parametrize(
    ("answer", "recorded"),
    [
        (429, 429),
        (408, 408),
        (httpx.ConnectError("connection refused"), None),
        (httpx.ReadError("connection reset"), None),
    ],
)
async def test_busy_timeouts_and_no_answer_are_retried(
    harness: Harness, answer: int | Exception, recorded: int | None
) -> None:
    harness.receiver.answers[URL] = [answer, 204]
    deliveries = await harness.open()
    sent = event("p1")

    deliveries.enqueue([sent])
    await harness.store.settled(sent.id)

    assert harness.store.outcomes(sent.id) == [(recorded, FAILING), (204, DELIVERED)]


async def test_a_refused_connection_is_recorded_saying_so(harness: Harness) -> None:
    harness.receiver.answers[URL] = [httpx.ConnectError("connection refused"), 204]
    deliveries = await harness.open()
    sent = event("p1")

    deliveries.enqueue([sent])
    await harness.store.settled(sent.id)

    assert harness.store.attempts_made[0].error == "could not connect: connection refused"


@pytest.mark.parametrize("code", [400, 401, 404, 410, 422])
async def test_a_4xx_is_final_after_one_attempt(harness: Harness, code: int) -> None:
    harness.receiver.answers[URL] = [code, 204]
    deliveries = await harness.open()
    sent = event("p1")

    deliveries.enqueue([sent])
    (stored,) = await harness.store.settled(sent.id)

    assert stored.status is DEAD
    assert harness.store.outcomes(sent.id) == [(code, DEAD)]
    assert harness.clock.sleeps == []


async def test_a_redirect_is_not_followed_and_is_final(harness: Harness) -> None:
    harness.receiver.answers[URL] = [(307, {"Location": "http://169.254.169.254/"})]
    deliveries = await harness.open()
    sent = event("p1")

    deliveries.enqueue([sent])
    (stored,) = await harness.store.settled(sent.id)

    assert stored.status is DEAD
    assert len(harness.receiver.received) == 1
    error = harness.store.attempts_made[0].error
    assert error == "redirect to http://169.254.169.254/: webhooks do not follow redirects"


async def test_a_receiver_that_never_answers_times_out_and_is_retried(
    harness: Harness,
) -> None:
    harness.receiver.answers[URL] = [asyncio.Event(), 204]  # never set: it hangs
    deliveries = await harness.open(RetryPolicy(timeout_s=0.05, first_delay_s=1.0))
    sent = event("p1")

    deliveries.enqueue([sent])
    await harness.store.settled(sent.id)

    assert harness.store.outcomes(sent.id) == [(None, FAILING), (204, DELIVERED)]
    assert harness.store.attempts_made[0].error == "no answer within 0.05 s (timeout)"


@pytest.mark.parametrize(
    "retry_after",
    [
        "120",
        format_datetime(T0 + timedelta(seconds=120), usegmt=True),  # an HTTP-date
    ],
)
async def test_retry_after_is_waited_out_before_the_next_attempt(
    harness: Harness, retry_after: str
) -> None:
    harness.receiver.answers[URL] = [(503, {"Retry-After": retry_after}), 204]
    deliveries = await harness.open(RetryPolicy(first_delay_s=1.0, max_delay_s=2.0))
    sent = event("p1")

    deliveries.enqueue([sent])
    await harness.store.settled(sent.id)

    first, second = harness.receiver.received
    assert harness.clock.sleeps == [120.0]  # not the policy's 1-2 s
    assert second.at - first.at == timedelta(seconds=120)


async def test_a_malformed_retry_after_falls_back_to_the_backoff(harness: Harness) -> None:
    harness.receiver.answers[URL] = [(503, {"Retry-After": "soon"}), 204]
    deliveries = await harness.open(RetryPolicy(first_delay_s=1.0, max_delay_s=2.0))
    sent = event("p1")

    deliveries.enqueue([sent])
    await harness.store.settled(sent.id)

    (waited,) = harness.clock.sleeps
    assert 0.5 <= waited <= 1.0


async def test_failures_past_the_retry_window_leave_the_event_dead(harness: Harness) -> None:
    harness.receiver.answers[URL] = [503]  # for ever
    window_s = 60.0
    deliveries = await harness.open(
        RetryPolicy(window_s=window_s, first_delay_s=1.0, max_delay_s=10.0)
    )
    sent = event("p1")

    deliveries.enqueue([sent])
    (stored,) = await harness.store.settled(sent.id)

    assert stored.status is DEAD
    outcomes = harness.store.outcomes(sent.id)
    assert len(outcomes) >= 5, "it kept trying within the window"
    assert outcomes[:-1] == [(503, FAILING)] * (len(outcomes) - 1)
    assert outcomes[-1] == (503, DEAD)
    # Every attempt inside the window from when it was queued, none after it.
    assert all(T0 <= r.at <= T0 + timedelta(seconds=window_s) for r in harness.receiver.received)
    assert stored.next_attempt_at is None


async def test_a_redelivery_gets_a_fresh_window_from_when_it_was_queued(
    harness: Harness,
) -> None:
    harness.receiver.answers[URL] = [503, 204]
    deliveries = await harness.open(RetryPolicy(window_s=60.0, first_delay_s=1.0))
    # Created two hours ago, queued again now: the window counts from now.
    sent = event("p1", at=T0 - timedelta(hours=2))
    sent.queued_at = T0

    deliveries.enqueue([sent])
    (stored,) = await harness.store.settled(sent.id)

    assert stored.status is DELIVERED
    assert harness.store.outcomes(sent.id) == [(503, FAILING), (204, DELIVERED)]


async def test_one_predictions_events_go_in_order_each_after_the_last_settled(
    harness: Harness,
) -> None:
    start = event("p1", "start", seq=0)
    completed = event("p1", "completed", seq=3)
    start.url = completed.url = "http://receiver.test/ordered"
    harness.receiver.answers[start.url] = [503, 503, 204]
    deliveries = await harness.open()

    deliveries.enqueue([start, completed])
    await harness.store.settled(start.id, completed.id)

    assert [r.event for r in harness.receiver.received] == [
        "start",
        "start",
        "start",
        "completed",
    ]


async def test_a_dead_event_does_not_stop_the_next_one_of_its_prediction(
    harness: Harness,
) -> None:
    start = event("p1", "start", seq=0)
    completed = event("p1", "completed", seq=3)
    start.url = completed.url = "http://receiver.test/flaky"
    harness.receiver.answers[start.url] = [400, 204]
    deliveries = await harness.open()

    deliveries.enqueue([start, completed])
    dead, delivered = await harness.store.settled(start.id, completed.id)

    assert (dead.status, delivered.status) == (DEAD, DELIVERED)


async def test_a_slow_receiver_holds_up_only_its_own_predictions(harness: Harness) -> None:
    hanging = asyncio.Event()
    slow = event("p-slow", url="http://slow.test/hook")
    fast = event("p-fast", url="http://fast.test/hook")
    harness.receiver.answers[slow.url] = [hanging]
    deliveries = await harness.open()

    deliveries.enqueue([slow, fast])
    await harness.store.settled(fast.id)

    assert deliveries.live(slow.id) is not None, "still being sent"
    hanging.set()
    await harness.store.settled(slow.id)


async def test_at_most_per_host_attempts_go_to_one_receiver_at_once(harness: Harness) -> None:
    release = asyncio.Event()
    busy = [event(f"p{i}", url="http://busy.test/hook") for i in range(5)]
    other = event("p-other", url="http://other.test/hook")
    harness.receiver.answers["http://busy.test/hook"] = [release]
    deliveries = await harness.open(limits=Limits(concurrency=64, per_host=2))

    deliveries.enqueue([*busy, other])
    await harness.receiver.until(lambda r: r.in_flight["busy.test"] == 2)
    await harness.store.settled(other.id)  # another receiver is not held up
    for _ in range(20):  # let every lane that could start a request start it
        await asyncio.sleep(0)

    assert harness.receiver.in_flight["busy.test"] == 2
    release.set()
    await harness.store.settled(*(e.id for e in busy))
    assert harness.receiver.most_in_flight["busy.test"] == 2
    assert len([r for r in harness.receiver.received if r.url == busy[0].url]) == 5


async def test_at_most_concurrency_attempts_are_in_flight_overall(harness: Harness) -> None:
    release = asyncio.Event()
    hosts = [f"http://h{i}.test/hook" for i in range(6)]
    for url in hosts:
        harness.receiver.answers[url] = [release]
    deliveries = await harness.open(limits=Limits(concurrency=3, per_host=8))
    sent = [event(f"p{i}", url=url) for i, url in enumerate(hosts)]

    deliveries.enqueue(sent)
    await harness.receiver.until(lambda r: sum(r.in_flight.values()) == 3)
    for _ in range(20):
        await asyncio.sleep(0)

    assert sum(harness.receiver.in_flight.values()) == 3
    release.set()
    await harness.store.settled(*(e.id for e in sent))
    assert len(harness.receiver.received) == 6


async def test_start_sends_what_a_previous_run_left_unsettled(harness: Harness) -> None:
    left = event("p1")
    left.status, left.attempts = FAILING, 2
    left.next_attempt_at = T0 + timedelta(seconds=30)
    done = event("p2")
    done.status = DELIVERED
    store = FakeOutboxStore([left, done])

    await harness.open(store=store)
    (stored,) = await store.settled(left.id)

    assert [r.webhook_id for r in harness.receiver.received] == [left.id]
    assert harness.clock.sleeps == [30.0], "no sooner than its next attempt was due"
    assert (stored.status, stored.attempts) == (DELIVERED, 3)


async def test_after_close_events_stay_stored_for_the_next_start(harness: Harness) -> None:
    deliveries = await harness.open()
    await deliveries.close()

    deliveries.enqueue([event("p1")])
    await asyncio.sleep(0)

    assert harness.receiver.received == []
    assert harness.store.attempts_made == []
