"""Webhook delivery to real loopback receivers: order, content, signatures, retries, the log."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from _app import FIXTURES, WEBHOOK_SETTINGS
from _receiver import HANG, Receiver
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from foretell.config import Settings
from foretell.webhooks import SigningKeys

pytestmark = pytest.mark.anyio

ALL_EVENTS = ["start", "output", "logs", "completed"]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def verifier(api: Any) -> Webhook:
    settings: Settings = api.app.state.settings
    return Webhook(SigningKeys.in_dir(settings.data_dir).current().value)


async def create(api: Any, model: str, input: dict[str, Any], webhook: Any) -> dict[str, Any]:
    response = await api.http.post(
        "/v1/predictions", json={"model": model, "input": input, "webhook": webhook}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def log(api: Any, prediction_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/v1/predictions/{prediction_id}/webhooks")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def settled_log(api: Any, prediction_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    """The delivery log once the prediction has ended and no event is pending or failing."""
    deadline = time.monotonic() + timeout_s
    while True:
        record = await api.get(prediction_id)
        body = await log(api, prediction_id)
        unsettled = [e for e in body["events"] if e["status"] in ("pending", "failing")]
        if record["status"] in ("succeeded", "failed", "canceled", "aborted") and not unsettled:
            return body
        assert time.monotonic() < deadline, f"deliveries still unsettled: {body}"
        await asyncio.sleep(0.02)


async def test_a_success_posts_start_then_completed_with_the_record_signed(hooked: Any) -> None:
    with Receiver().running() as receiver:
        url = receiver.url("/in?team=ml&x=1")
        created = await create(hooked, "fixtures/echo", {"text": "hi"}, url)
        delivered = await settled_log(hooked, created["id"])

    got = receiver.for_prediction(created["id"])
    assert [r.record["status"] for r in got] == ["processing", "succeeded"]
    assert all(r.path == "/in?team=ml&x=1" for r in got), "the query string is kept"
    final = got[-1].record
    assert final["output"] == {"text": "hi", "n": 1}
    assert final["webhook"] == {"url": url, "events": ["start", "completed"]}
    # The same JSON as GET, but for the delivery status, which moved on since.
    record = await hooked.get(created["id"])
    assert {**final, "webhook_status": "delivered"} == record
    assert record["webhook_status"] == "delivered"

    wh = verifier(hooked)
    for r in got:
        assert r.headers["content-type"] == "application/json"
        assert wh.verify(r.body, r.headers) == r.record
    assert len({r.webhook_id for r in got}) == 2, "one webhook-id per event"

    assert delivered["webhook_status"] == "delivered"
    assert [(e["event"], e["status"]) for e in delivered["events"]] == [
        ("start", "delivered"),
        ("completed", "delivered"),
    ]
    assert [e["webhook_id"] for e in delivered["events"]] == [r.webhook_id for r in got]
    for event in delivered["events"]:
        (attempt,) = event["attempts"]
        assert attempt["status_code"] == 204
        assert attempt["error"] is None
        assert attempt["outcome"] == "delivered"
        assert attempt["latency_ms"] >= 0


async def test_a_tampered_body_fails_verification(hooked: Any) -> None:
    with Receiver().running() as receiver:
        created = await create(hooked, "fixtures/echo", {"text": "sign me"}, receiver.url())
        await settled_log(hooked, created["id"])
    original = receiver.for_prediction(created["id"])[-1]
    tampered = original.body.replace(b"sign me", b"sign mE")
    assert tampered != original.body
    with pytest.raises(WebhookVerificationError):
        verifier(hooked).verify(tampered, original.headers)


async def test_every_event_in_order_for_a_prediction_that_logs(hooked: Any) -> None:
    with Receiver().running() as receiver:
        hook = {"url": receiver.url(), "events": ALL_EVENTS}
        created = await create(hooked, "fixtures/sleeps", {"seconds": 0.01}, hook)
        await settled_log(hooked, created["id"])
    got = receiver.for_prediction(created["id"])
    # Its print arrives while it runs (live logs): the logs event is sent then, not at the end.
    assert [r.record["status"] for r in got] == [*["processing"] * 2, *["succeeded"] * 2]
    body = await log(hooked, created["id"])
    assert [e["event"] for e in body["events"]] == ["start", "logs", "output", "completed"]
    assert [r.webhook_id for r in got] == [e["webhook_id"] for e in body["events"]]
    assert "sleeping 0.01 s" in got[1].record["logs"]


async def test_a_failed_prediction_completes_with_its_error(hooked: Any) -> None:
    with Receiver().running() as receiver:
        hook = {"url": receiver.url(), "events": ["output", "completed"]}
        created = await create(hooked, "fixtures/raises-in-predict", {"text": "x"}, hook)
        await settled_log(hooked, created["id"])
    (completed,) = receiver.for_prediction(created["id"])  # no output: it made none
    assert completed.record["status"] == "failed"
    assert completed.record["error"]["source"] == "model"
    assert "boom: cannot predict" in completed.record["error"]["message"]


async def test_a_prediction_canceled_before_it_started_sends_only_completed(
    hooked: Any,
) -> None:
    with Receiver().running() as receiver:
        blocker = await hooked.create("fixtures/sleeps", {"seconds": 2})
        await hooked.wait_for(blocker["id"], ["processing"])
        queued = await create(hooked, "fixtures/sleeps", {"seconds": 0}, receiver.url())
        response = await hooked.http.post(f"/v1/predictions/{queued['id']}/cancel")
        assert response.status_code == 200, response.text
        await settled_log(hooked, queued["id"])
        await hooked.http.post(f"/v1/predictions/{blocker['id']}/cancel")
    (completed,) = receiver.for_prediction(queued["id"])
    assert completed.record["status"] == "canceled"
    assert completed.record["started_at"] is None


async def test_a_receiver_down_at_first_gets_everything_in_order_once_up(hooked: Any) -> None:
    with Receiver().running() as probe:
        port = probe.port  # a port that was free; nothing listens on it after this block
    created = await create(
        hooked, "fixtures/echo", {"text": "later"}, f"http://127.0.0.1:{port}/in"
    )
    deadline = time.monotonic() + 20
    while True:
        body = await log(hooked, created["id"])
        attempts = [a for e in body["events"] for a in e["attempts"]]
        if len(attempts) >= 3:
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.02)
    assert body["webhook_status"] == "failing"
    assert attempts[0]["status_code"] is None
    assert "could not connect" in attempts[0]["error"]
    assert attempts[0]["outcome"] == "failing"
    assert (await hooked.get(created["id"]))["webhook_status"] == "failing"

    with Receiver(port=port).running() as receiver:
        final = await settled_log(hooked, created["id"])
    assert [r.record["status"] for r in receiver.received] == ["processing", "succeeded"]
    start, completed = final["events"]
    assert start["status"] == completed["status"] == "delivered"
    assert len(start["attempts"]) >= 2
    assert [a["number"] for a in start["attempts"]] == list(range(1, len(start["attempts"]) + 1))
    assert start["attempts"][-1]["status_code"] == 204
    # completed waited behind start: its first attempt began after start's last one ended
    start_done = parse_time(start["attempts"][-1]["at"]) + timedelta(
        milliseconds=start["attempts"][-1]["latency_ms"]
    )
    assert parse_time(completed["attempts"][0]["at"]) >= start_done


def dead_attempts(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('foretell_webhook_attempts_total{outcome="dead"}'):
            return float(line.split()[-1])
    return 0.0


async def test_a_400_is_not_retried_and_the_webhook_is_dead(hooked: Any) -> None:
    dead_before = dead_attempts((await hooked.http.get("/metrics")).text)
    with Receiver(400).running() as receiver:
        hook = {"url": receiver.url(), "events": ["completed"]}
        created = await create(hooked, "fixtures/echo", {"text": "no"}, hook)
        body = await settled_log(hooked, created["id"])
        await asyncio.sleep(0.3)  # several retry delays: nothing more may arrive
    assert len(receiver.received) == 1
    (event,) = body["events"]
    assert event["status"] == "dead"
    (attempt,) = event["attempts"]
    assert attempt["status_code"] == 400
    assert attempt["outcome"] == "dead"
    assert body["webhook_status"] == "dead"
    assert (await hooked.get(created["id"]))["webhook_status"] == "dead"
    assert dead_attempts((await hooked.http.get("/metrics")).text) == dead_before + 1


async def test_a_503_with_retry_after_is_retried_no_sooner(hooked: Any) -> None:
    with Receiver((503, {"Retry-After": "1"})).running() as receiver:
        hook = {"url": receiver.url(), "events": ["completed"]}
        created = await create(hooked, "fixtures/echo", {"text": "busy"}, hook)
        body = await settled_log(hooked, created["id"])
    first, second = receiver.received
    assert second.at - first.at >= 0.95, "Retry-After: 1 was not honoured"
    assert first.webhook_id == second.webhook_id, "a retry keeps its webhook-id"
    (event,) = body["events"]
    assert [a["status_code"] for a in event["attempts"]] == [503, 204]
    assert event["status"] == "delivered"


async def test_a_redirect_is_not_followed(hooked: Any) -> None:
    with Receiver((307, {"Location": "http://169.254.169.254/latest"})).running() as receiver:
        hook = {"url": receiver.url(), "events": ["completed"]}
        created = await create(hooked, "fixtures/echo", {"text": "go"}, hook)
        body = await settled_log(hooked, created["id"])
    assert len(receiver.received) == 1
    (attempt,) = body["events"][0]["attempts"]
    assert attempt["status_code"] == 307
    assert "do not follow redirects" in attempt["error"]
    assert body["webhook_status"] == "dead"


async def test_predictions_keep_flowing_while_a_receiver_hangs(serve: Any) -> None:
    # Attempts that outlast the test: every prediction below finishes while the first attempt
    # still hangs, which no clock can blur.
    settings = {**WEBHOOK_SETTINGS, "webhook_timeout_s": 300.0}
    async with serve({"fixtures/echo": FIXTURES / "echo"}, **settings) as api:
        with Receiver(otherwise=HANG).running() as receiver:
            hook = {"url": receiver.url(), "events": ["completed"]}
            created = await create(api, "fixtures/echo", {"text": "stuck"}, hook)
            await receiver.until(lambda r: len(r.received) >= 1, what="the first attempt")
            for i in range(20):
                response = await api.post("fixtures/echo", {"text": f"{i}"}, prefer="wait=60")
                assert response.json()["status"] == "succeeded", response.text
            attempts = (await log(api, created["id"]))["events"][0]["attempts"]
            assert attempts == [], "the hanging attempt has not ended, yet nothing waited on it"
            assert len(receiver.received) == 1


async def test_a_hanging_receiver_times_out_and_the_attempt_says_so(hooked: Any) -> None:
    with Receiver(HANG, HANG, otherwise=HANG).running() as receiver:
        hook = {"url": receiver.url(), "events": ["completed"]}
        created = await create(hooked, "fixtures/echo", {"text": "stuck"}, hook)
        await receiver.until(lambda r: len(r.received) >= 1, what="the first attempt")
        deadline = time.monotonic() + 60
        while True:
            attempts = (await log(hooked, created["id"]))["events"][0]["attempts"]
            if attempts:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    assert attempts[0]["status_code"] is None
    assert "no answer within 1 s (timeout)" in attempts[0]["error"]
    assert attempts[0]["latency_ms"] >= 900


async def test_redeliver_sends_the_last_event_again_under_its_id(hooked: Any) -> None:
    with Receiver().running() as receiver:
        created = await create(hooked, "fixtures/echo", {"text": "again"}, receiver.url())
        await settled_log(hooked, created["id"])
        response = await hooked.http.post(f"/v1/predictions/{created['id']}/webhooks/redeliver")
        assert response.status_code == 202, response.text
        assert response.json()["event"] == "completed"
        await receiver.until(lambda r: len(r.for_prediction(created["id"])) == 3)
        body = await settled_log(hooked, created["id"])
    _start, completed, again = receiver.for_prediction(created["id"])
    assert again.webhook_id == completed.webhook_id == response.json()["webhook_id"]
    assert again.body == completed.body
    assert [a["number"] for a in body["events"][1]["attempts"]] == [1, 2]


async def test_a_redelivered_last_event_clears_a_dead_status(hooked: Any) -> None:
    with Receiver(400, 400).running() as receiver:  # start and completed refused, then 204
        created = await create(hooked, "fixtures/echo", {"text": "later"}, receiver.url())
        body = await settled_log(hooked, created["id"])
        assert [e["status"] for e in body["events"]] == ["dead", "dead"]
        assert body["webhook_status"] == "dead"
        response = await hooked.http.post(f"/v1/predictions/{created['id']}/webhooks/redeliver")
        assert response.status_code == 202, response.text
        await receiver.until(lambda r: len(r.for_prediction(created["id"])) == 3)
        body = await settled_log(hooked, created["id"])
    # start stays dead in the log, but completed carried the whole, newer record
    assert [e["status"] for e in body["events"]] == ["dead", "delivered"]
    assert body["webhook_status"] == "delivered"
    assert (await hooked.get(created["id"]))["webhook_status"] == "delivered"


async def test_redeliver_without_a_webhook_is_409_saying_so(hooked: Any) -> None:
    created = await hooked.create("fixtures/echo", {"text": "plain"}, prefer="wait=5")
    assert created["webhook_status"] == "none"
    response = await hooked.http.post(f"/v1/predictions/{created['id']}/webhooks/redeliver")
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        f"prediction '{created['id']}' has no webhook event to redeliver: "
        "it was created without a webhook"
    )


async def test_the_webhook_log_of_an_unknown_prediction_is_404(hooked: Any) -> None:
    response = await hooked.http.get("/v1/predictions/nope/webhooks")
    assert response.status_code == 404
    assert response.json()["detail"] == "prediction 'nope' not found"


async def test_a_synchronous_request_with_a_webhook_still_sends_start(hooked: Any) -> None:
    with Receiver().running() as receiver:
        response = await hooked.http.post(
            "/v1/predictions",
            json={"model": "fixtures/echo", "input": {"text": "sync"}, "webhook": receiver.url()},
            headers={"Prefer": "wait=5"},
        )
        assert response.json()["status"] == "succeeded"
        await settled_log(hooked, response.json()["id"])
    assert [r.record["status"] for r in receiver.received] == ["processing", "succeeded"]
    assert orjson.loads(receiver.received[-1].body)["output"] == {"text": "sync", "n": 1}


async def test_a_hanging_receiver_does_not_hold_up_another(serve: Any, tmp_path: Path) -> None:
    """More events for a hanging receiver than the server may have in flight in all: the
    others wait for that receiver's slots, not for everyone's."""
    # The hanging attempts outlast the test (no timeout, no retry meanwhile), so whatever the
    # machine's speed, the fine receiver is served only if it did not wait for their slots.
    settings = {
        **WEBHOOK_SETTINGS,
        "webhook_timeout_s": 300.0,
        "webhook_concurrency": 4,
        "webhook_per_host": 2,
    }
    async with serve({"fixtures/echo": FIXTURES / "echo"}, **settings) as api:
        with Receiver(otherwise=HANG).running() as stuck, Receiver().running() as fine:
            hook = {"url": stuck.url(), "events": ["completed"]}
            for i in range(8):
                await create(api, "fixtures/echo", {"text": f"stuck {i}"}, hook)
            await stuck.until(lambda r: len(r.received) >= 2, what="2 hanging attempts")
            hook = {"url": fine.url(), "events": ["completed"]}
            created = await create(api, "fixtures/echo", {"text": "fine"}, hook)
            await fine.until(lambda r: len(r.for_prediction(created["id"])) == 1, timeout_s=60)
            body = await settled_log(api, created["id"], timeout_s=60)
            assert len(stuck.received) == 2, "at most 2 attempts in flight to one receiver"
    (event,) = body["events"]
    assert [a["status_code"] for a in event["attempts"]] == [204]


async def test_a_malformed_retry_after_costs_nothing_but_the_attempt(hooked: Any) -> None:
    with Receiver((503, {"Retry-After": "²"})).running() as receiver:
        hook = {"url": receiver.url(), "events": ["start", "completed"]}
        created = await create(hooked, "fixtures/echo", {"text": "odd"}, hook)
        body = await settled_log(hooked, created["id"])
    assert [e["status"] for e in body["events"]] == ["delivered", "delivered"]
    assert [a["status_code"] for a in body["events"][0]["attempts"]] == [503, 204]
    assert len(receiver.received) == 3


async def test_redeliver_while_it_is_being_retried_sends_no_second_copy(hooked: Any) -> None:
    with Receiver(503, 503, 503, 503).running() as receiver:
        hook = {"url": receiver.url(), "events": ["completed"]}
        created = await create(hooked, "fixtures/echo", {"text": "busy"}, hook)
        await receiver.until(lambda r: len(r.received) >= 2, what="two attempts")
        response = await hooked.http.post(f"/v1/predictions/{created['id']}/webhooks/redeliver")
        assert response.status_code == 202, response.text
        assert response.json()["status"] in ("pending", "failing")
        body = await settled_log(hooked, created["id"])
        await asyncio.sleep(0.3)  # a second lane's copies would arrive in this time
    assert [r.headers["webhook-id"] for r in receiver.received] == [
        response.json()["webhook_id"]
    ] * 5
    (event,) = body["events"]
    assert [a["number"] for a in event["attempts"]] == [1, 2, 3, 4, 5]
    assert [a["status_code"] for a in event["attempts"]] == [503, 503, 503, 503, 204]
