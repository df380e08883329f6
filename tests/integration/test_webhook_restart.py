"""Webhook events survive a SIGKILL: a real server whose receiver is down is killed with events
unsent; after a restart on the same data dir every event arrives, each under the one webhook-id
it was given, signed with the secret the server made on its first start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _receiver import Receiver
from _server import build_repository, running_server, sigkill, wait_for
from standardwebhooks import Webhook

from foretell.webhooks import SigningKeys

pytestmark = pytest.mark.slow

N = 5
ENV = {
    # The restart takes over the killed server's events once its leases expire: 2 s, not 15.
    "FORETELL_LEASE_S": "2",
    "FORETELL_WEBHOOK_ALLOW_PRIVATE": "true",
    "FORETELL_WEBHOOK_FIRST_RETRY_S": "0.05",
    "FORETELL_WEBHOOK_MAX_RETRY_DELAY_S": "0.3",
}


def deliveries(client: httpx.Client, prediction_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/predictions/{prediction_id}/webhooks")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_events_pending_at_a_sigkill_are_all_delivered_after_restart_once_each(
    tmp_path: Path, db_url: str
) -> None:
    # On each backend (tests/conftest.py): SQLite's file in the data dir, or a PostgreSQL
    # database; the signing secrets stay in the data dir either way.
    env = ENV | {"FORETELL_DB": db_url}
    repo = build_repository(tmp_path, demo=False, fixtures=["echo"])
    data_dir = tmp_path / "data"
    with Receiver().running() as probe:
        port = probe.port  # free now; nothing listens there until the restart
    hook = f"http://127.0.0.1:{port}/in?from=test"

    with running_server(repo, data_dir, env=env) as server, server.client() as client:
        ids = []
        for i in range(N):
            response = client.post(
                "/v1/predictions",
                json={"model": "fixtures/echo", "input": {"text": f"t{i}"}, "webhook": hook},
                headers={"Prefer": "wait=10"},
            )
            assert response.json()["status"] == "succeeded", response.text
            ids.append(response.json()["id"])

        def all_failing() -> bool:
            return all(deliveries(client, p)["webhook_status"] == "failing" for p in ids)

        wait_for(all_failing, timeout=20, what="every webhook to be failing")
        events = {p: deliveries(client, p)["events"] for p in ids}
        sigkill(server)

    for p in ids:
        assert [e["event"] for e in events[p]] == ["start", "completed"]
    expected = {e["webhook_id"]: (p, e["event"]) for p in ids for e in events[p]}

    with (
        Receiver(port=port).running() as receiver,
        running_server(repo, data_dir, env=env) as server,
        server.client() as client,
    ):

        def all_delivered() -> bool:
            return all(deliveries(client, p)["webhook_status"] == "delivered" for p in ids)

        wait_for(all_delivered, timeout=30, what="every webhook to be delivered")
        time.sleep(0.3)  # anything sent twice would arrive in this time
        after = {p: deliveries(client, p)["events"] for p in ids}

    received = receiver.received
    assert {r.webhook_id for r in received} == set(expected), "every event, no other"
    assert len(received) == len(expected), "each event once: none was in flight at the kill"
    verifier = Webhook(SigningKeys.in_dir(data_dir).current().value)
    for r in received:
        prediction_id, event = expected[r.webhook_id]
        record = verifier.verify(r.body, r.headers)
        assert record["id"] == prediction_id
        assert record["status"] == ("processing" if event == "start" else "succeeded")
        assert r.path == "/in?from=test"
    for p in ids:
        mine = [r for r in received if r.record["id"] == p]
        assert [r.record["status"] for r in mine] == ["processing", "succeeded"], "in order"
        start, completed = after[p]
        assert start["attempts"][0]["error"].startswith("could not connect")
        assert start["attempts"][-1]["status_code"] == 204
        assert completed["attempts"][-1]["status_code"] == 204
        numbers = [a["number"] for a in start["attempts"]]
        assert numbers == list(range(1, len(numbers) + 1)), "attempts counted across the restart"
