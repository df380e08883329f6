"""A replica process that dies, a running prediction canceled, a model whose setup() raises —
against a real `foretell serve` process (real port, real SQLite file, real replica processes).

A replica SIGKILLed mid-prediction fails that prediction with an internal error naming the
signal, and a new replica serves what comes next; one killed while idle fails nothing, since
nothing was running on it; a canceled running prediction stops its
replica's work at once (SIGUSR1), and the same process serves the next one; a model that cannot
set up fails its deployment once, with its traceback in the deployment's logs, and is not
restarted over and over. Other models never notice.

One server serves the module (a start costs seconds); each test leaves it serving.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _server import Server, build_repository, running_server, session_processes, wait_for

pytestmark = pytest.mark.slow

PID = "fixtures/sleeps-reporting-pid"  # answers {"pid": its replica's pid, "seconds": slept}
ECHO = "fixtures/echo"
SETUP_RAISES = "fixtures/raises-in-setup"  # RuntimeError("setup exploded") in setup()
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
LONG_S = 30.0  # long enough that a prediction still running afterwards was not interrupted
# A canceled prediction's replica is free again long before its sleep (LONG_S) would have ended.
# (One that ignored the interrupt would be killed and replaced after the cancel grace: the test
# sees that by its pid, not by the clock, so a busy machine's slowness cannot be taken for it.)
PROMPTLY_S = LONG_S / 2
# Pool.restart retries a replica after 1 s, then 2 s: watching this long would see a retry.
RESTART_BACKOFF_S = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("replica-crash")
    repo = build_repository(
        root, demo=False, fixtures=["sleeps-reporting-pid", "echo", "raises-in-setup"]
    )
    with running_server(repo, root / "data") as server:
        yield server


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def create(client: httpx.Client, model: str, input: dict[str, Any], **headers: str) -> Any:
    response = client.post(
        "/v1/predictions", json={"model": model, "input": input}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def predict(client: httpx.Client, model: str, input: dict[str, Any]) -> Any:
    """Create and wait for a prediction that must succeed; its output."""
    record = create(client, model, input, Prefer="wait=30")
    assert record["status"] == "succeeded", record
    return record["output"]


def get(client: httpx.Client, prediction_id: str) -> Any:
    response = client.get(f"/v1/predictions/{prediction_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_status(
    client: httpx.Client, prediction_id: str, statuses: set[str], timeout: float = 20.0
) -> Any:
    def reached() -> Any:
        record = get(client, prediction_id)
        return record if record["status"] in statuses else None

    return wait_for(reached, timeout=timeout, what=f"{prediction_id} to be {statuses}")


def replica_pid(client: httpx.Client) -> int:
    pid: int = predict(client, PID, {"seconds": 0})["pid"]
    return pid


def test_sigkill_mid_prediction_fails_it_and_a_new_replica_serves_the_next(
    server: Server, client: httpx.Client
) -> None:
    pid = replica_pid(client)
    assert pid in session_processes(server.pid), "the model's answer names one of the server's"
    doomed = create(client, PID, {"seconds": LONG_S})
    wait_status(client, doomed["id"], {"processing"})
    queued = create(client, PID, {"seconds": 0})  # waits behind it on the only replica
    assert get(client, queued["id"])["status"] == "pending"

    os.kill(pid, signal.SIGKILL)

    failed = wait_status(client, doomed["id"], TERMINAL)
    assert failed["status"] == "failed", failed
    assert failed["error"]["source"] == "internal", failed["error"]
    assert "SIGKILL" in failed["error"]["message"], failed["error"]
    assert "fixtures/sleeps-reporting-pid:1" in failed["error"]["message"]
    assert failed["output"] is None
    assert failed["completed_at"] is not None
    # What waited behind it was not lost: it ran on the replacement.
    ran = wait_status(client, queued["id"], TERMINAL)
    assert ran["status"] == "succeeded", ran
    replacement = ran["output"]["pid"]
    assert replacement != pid
    assert replica_pid(client) == replacement
    assert pid not in session_processes(server.pid)
    # The model is still served, and the others never noticed.
    model = client.get(f"/v1/models/{PID}").json()
    assert model["versions"][0]["deployment"]["status"] == "ready", model
    assert predict(client, ECHO, {"text": "still here"}) == {"text": "still here", "n": 1}


def test_a_replica_killed_while_idle_is_replaced_without_failing_the_next_prediction(
    server: Server, client: httpx.Client
) -> None:
    """Nothing was running when it died (the OOM killer picks idle processes too): the next
    prediction never reached it, so it must not fail as if it had died "mid-prediction"."""
    pid = replica_pid(client)
    os.kill(pid, signal.SIGKILL)
    # Gone from /proc altogether only once the server has reaped it, i.e. noticed its death
    # (a zombie, merely dead, could still be sent the next batch in the instant before).
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10, what="the server to reap it")

    record = create(client, PID, {"seconds": 0}, Prefer="wait=30")

    assert record["status"] == "succeeded", record["error"]
    assert record["output"]["pid"] != pid
    assert replica_pid(client) == record["output"]["pid"]


def test_cancel_interrupts_the_running_prediction_and_its_replica_serves_the_next(
    server: Server, client: httpx.Client
) -> None:
    pid = replica_pid(client)
    running = create(client, PID, {"seconds": LONG_S})
    wait_status(client, running["id"], {"processing"})

    started = time.monotonic()
    response = client.post(f"/v1/predictions/{running['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    after = predict(client, PID, {"seconds": 0})
    took = time.monotonic() - started

    assert took < PROMPTLY_S, f"the replica was busy {took:.1f} s after the cancel"
    # The same process: its sleep was interrupted, not run out, and it was not killed.
    assert after["pid"] == pid
    assert pid in session_processes(server.pid)
    canceled = get(client, running["id"])
    assert canceled["status"] == "canceled", canceled
    assert canceled["output"] is None
    assert canceled["error"] is None


def setup_failed_entries(client: httpx.Client) -> tuple[Any, int]:
    response = client.get(f"/v1/models/{SETUP_RAISES}")
    assert response.status_code == 200, response.text
    deployment = response.json()["versions"][0]["deployment"]
    return deployment, deployment["logs"].count("replica setup failed")


def test_setup_that_raises_fails_the_deployment_once_not_in_a_restart_loop(
    server: Server, client: httpx.Client
) -> None:
    deployment, attempts = setup_failed_entries(client)
    assert deployment["status"] == "failed", deployment
    assert "setup exploded" in deployment["error"]
    assert attempts == 1, deployment["logs"]

    # A prediction for it fails at once, and does not set off a restart either.
    record = create(client, SETUP_RAISES, {"text": "x"})
    assert record["status"] == "failed", record
    assert record["error"]["source"] == "internal"
    assert "setup exploded" in record["error"]["message"]
    time.sleep(RESTART_BACKOFF_S * 1.5)

    deployment, attempts = setup_failed_entries(client)
    assert deployment["status"] == "failed", deployment
    assert attempts == 1, deployment["logs"]
    assert "raises-in-setup:1 is gone; starting a new one" not in server.log()
    assert predict(client, ECHO, {"text": "unaffected"}) == {"text": "unaffected", "n": 1}


def test_setup_that_raises_leaves_the_models_traceback_in_the_deployment_logs(
    client: httpx.Client,
) -> None:
    deployment, _ = setup_failed_entries(client)
    logs = deployment["logs"]

    assert "RuntimeError: setup exploded" in logs
    # The model's own traceback, down to the line that raised: what its author needs.
    assert "Traceback (most recent call last)" in logs, logs
    assert 'raise RuntimeError("setup exploded")' in logs, logs
    assert "predict.py" in logs
