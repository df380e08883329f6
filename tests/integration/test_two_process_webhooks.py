"""Webhooks from two real `foretell serve` processes on one store: each event is sent by exactly
one process, a prediction's events in order; the events of a process SIGKILLed mid-delivery are
taken over by the other once its leases expire and sent under the same webhook-id, answered 2xx
once each.

Each process signs with the secret in its own data dir (as two machines would if nobody copied
the file), so the receiver can tell which process sent each request.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
from _receiver import Received, Receiver
from _server import Server, build_repository, running_server, sigkill, wait_for
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from foretell.webhooks import SigningKeys

pytestmark = pytest.mark.slow

N = 4  # predictions made on each process
ENV = {
    "FORETELL_LEASE_S": "4",  # a dead process's events go on soon; a live one keeps its own
    "FORETELL_WEBHOOK_ALLOW_PRIVATE": "true",
    "FORETELL_WEBHOOK_FIRST_RETRY_S": "0.05",
    "FORETELL_WEBHOOK_MAX_RETRY_DELAY_S": "0.3",
}


def sender(request: Received, signers: dict[str, Webhook]) -> str:
    """Which process signed `request` ('a' or 'b')."""
    for name, signer in signers.items():
        try:
            signer.verify(request.body, request.headers)
        except WebhookVerificationError:
            continue
        return name
    raise AssertionError(f"a request signed by neither process: {request.headers}")


def create(c: httpx.Client, receiver: Receiver, tag: str) -> str:
    body = {
        "model": "fixtures/echo",
        "input": {"text": tag},
        "webhook": receiver.url(f"/{tag}"),
        "webhook_events_filter": ["start", "completed"],
    }
    response = c.post("/v1/predictions", json=body)
    assert response.status_code == 201, response.text
    prediction_id: str = response.json()["id"]
    return prediction_id


def client(server: Server, key_from: Server) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key_from.admin_key}"}
    )


def test_each_event_is_sent_by_one_process_in_order_and_a_dead_ones_by_the_other(
    tmp_path: Path, db_url: str
) -> None:
    repo = build_repository(tmp_path, demo=False, fixtures=["echo"])
    env = ENV | {"FORETELL_DB": db_url}
    with (
        Receiver(otherwise=503).running() as receiver,
        running_server(repo, tmp_path / "a", env=env) as a,
        running_server(repo, tmp_path / "b", env=env) as b,
    ):
        signers = {
            name: Webhook(SigningKeys.in_dir(server.data_dir).current().value)
            for name, server in (("a", a), ("b", b))
        }
        with client(a, a) as on_a, client(b, a) as on_b:
            made = {create(on_a, receiver, f"a{i}"): "a" for i in range(N)}
            made |= {create(on_b, receiver, f"b{i}"): "b" for i in range(N)}

        def starts_tried() -> bool:  # every first event has been tried (and answered 503)
            return {r.record["id"] for r in receiver.requests()} >= set(made)

        wait_for(starts_tried, timeout=30, what="each prediction's first event to be tried")
        before_kill = receiver.requests()
        sigkill(a)
        receiver.answer_from_now(204)

        def all_delivered() -> bool:
            delivered = [r for r in receiver.requests() if r.answer == 204]
            return len({r.webhook_id for r in delivered}) == 2 * len(made)

        wait_for(all_delivered, timeout=60, what="every event to be delivered")
        requests = receiver.requests()

    # While both lived, each process sent its own predictions' events, and only those.
    for request in before_kill:
        assert sender(request, signers) == made[request.record["id"]]
    # Each event answered 2xx exactly once; A's after the kill came from B, under A's ids.
    ok = Counter(r.webhook_id for r in requests if r.answer == 204)
    assert set(ok.values()) == {1}, ok
    first_ids = {r.webhook_id for r in before_kill}
    for request in requests[len(before_kill) :]:
        assert sender(request, signers) == "b" or request.answer != 204
    by_prediction: dict[str, list[Received]] = defaultdict(list)
    for request in requests:
        by_prediction[request.record["id"]].append(request)
    for prediction_id, seen in by_prediction.items():
        events = [r.record.get("status") for r in seen]
        assert len(set(r.webhook_id for r in seen)) == 2, events
        # Its first event (tried before the kill) was delivered before its last was ever sent.
        first_ok = next(i for i, r in enumerate(seen) if r.answer == 204)
        assert seen[first_ok].webhook_id in first_ids
        assert all(r.webhook_id == seen[first_ok].webhook_id for r in seen[: first_ok + 1])
        assert seen[-1].record["status"] == "succeeded", prediction_id
    print(f"{len(requests)} requests, {len(ok)} events delivered once each")
