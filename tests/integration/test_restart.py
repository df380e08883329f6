"""Nothing accepted is lost: stop a real server (SIGKILL or SIGTERM) with predictions pending and
processing, start it again on the same data dir, and every prediction is accounted for — pending
ones run, an interrupted one is re-run once, or failed with an `internal` error the second time.

Each test runs `foretell serve` as a real process (see _server.py) on a repository holding only
the fixture models it needs, so that a start takes seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import (
    Server,
    build_repository,
    running_server,
    session_processes,
    sigkill,
    sigterm,
    wait_for,
)

pytestmark = pytest.mark.slow

SLEEPS = "fixtures/sleeps"
ECHO = "fixtures/echo"
SLEEP_S = 1.5
N = 6
TERMINAL = {"succeeded", "failed", "canceled"}
Serve = Callable[[], AbstractContextManager[Server]]
# What recovery writes into an interrupted prediction's logs (foretell.service.recovery.requeue).
REQUEUED_AFTER_CRASH = "re-queued: the server stopped while this prediction was processing"
REQUEUED_AFTER_SHUTDOWN = "re-queued: the server shut down while this prediction was processing"
# app.SHUTDOWN_GRACE_S (10 s) for running predictions, then Replica.stop's 5 s for a replica
# still busy with an abandoned one to take Shutdown before it is killed, plus slack for a busy
# machine; still short of the 25 s prediction that a shutdown waiting for it would take.
SHUTDOWN_WITHIN_S = 22.0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return build_repository(tmp_path, demo=False, fixtures=["sleeps", "echo"])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def serve(repo: Path, data_dir: Path, db_url: str) -> Serve:
    """Starts `foretell serve` over `repo` on the test's data dir and store, each test on both
    backends (tests/conftest.py: SQLite's file in the data dir, or a PostgreSQL database); every
    call is a new process on the same records. A restart takes over what a killed server left
    once that one's leases expire (store.leases): 2 s here rather than the default 15."""
    env = {"FORETELL_DB": db_url, "FORETELL_LEASE_S": "2"}
    return lambda: running_server(repo, data_dir, env=env)


def create(client: httpx.Client, model: str, input: dict[str, Any]) -> str:
    response = client.post("/v1/predictions", json={"model": model, "input": input})
    assert response.status_code == 201, response.text
    prediction_id: str = response.json()["id"]
    return prediction_id


def get(client: httpx.Client, prediction_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/predictions/{prediction_id}")
    assert response.status_code == 200, (
        f"GET {prediction_id}: {response.status_code} {response.text}"
    )
    record: dict[str, Any] = response.json()
    return record


def wait_requeued(client: httpx.Client, prediction_id: str) -> dict[str, Any]:
    """The record once a restart has taken it over and re-queued it: after the crashed server's
    lease expired (2 s), not at once."""

    def requeued() -> dict[str, Any] | None:
        record = get(client, prediction_id)
        return record if REQUEUED_AFTER_CRASH in record["logs"] else None

    return wait_for(requeued, timeout=20, what=f"{prediction_id} to be re-queued after a crash")


def stored_ids(client: httpx.Client, status: str) -> set[str]:
    """Ids the *database* holds with `status`: listing flushes the store's writer first, so
    this tells what survives a SIGKILL, where a GET may answer from memory."""
    response = client.get("/v1/predictions", params={"status": status, "limit": 1000})
    assert response.status_code == 200, response.text
    return {p["id"] for p in response.json()["results"]}


def wait_stored_processing(client: httpx.Client, ids: Iterable[str]) -> str:
    """Wait until one of `ids` is processing, durably; return it."""
    wanted = set(ids)

    def processing() -> str | None:
        found = stored_ids(client, "processing") & wanted
        assert len(found) <= 1, f"one replica, yet several processing: {found}"
        return found.pop() if found else None

    return wait_for(processing, timeout=20, what="a prediction to be stored as processing")


def wait_terminal(
    client: httpx.Client, ids: Iterable[str], *, timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait until every one of `ids` is terminal; return their records by id."""
    pending = list(ids)
    records: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for prediction_id in list(pending):
            record = get(client, prediction_id)
            if record["status"] in TERMINAL:
                records[prediction_id] = record
                pending.remove(prediction_id)
        if not pending:
            break
        if time.monotonic() > deadline:
            statuses = {i: get(client, i)["status"] for i in pending}
            raise AssertionError(f"still not finished after {timeout:g} s: {statuses}")
        time.sleep(0.1)
    return records


def statuses(records: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {i: r["status"] for i, r in records.items()}


def queue_sleeps(server: Server, n: int = N) -> tuple[list[str], str]:
    """Queue `n` sleeps predictions; return their ids and the one processing (durably)."""
    with server.client() as client:
        ids = [create(client, SLEEPS, {"seconds": SLEEP_S}) for _ in range(n)]
        processing = wait_stored_processing(client, ids)
        pending = stored_ids(client, "pending")
    assert processing == ids[0], "the queue runs first come, first served"
    assert pending >= set(ids[1:]), "the others wait behind the running one"
    return ids, processing


def test_sigkill_with_predictions_pending_and_processing_loses_none(serve: Serve) -> None:
    with serve() as server:
        ids, interrupted = queue_sleeps(server)
        sigkill(server)

    with serve() as server, server.client() as client:
        records = wait_terminal(client, ids, timeout=N * SLEEP_S + 15)

    assert statuses(records) == dict.fromkeys(ids, "succeeded")
    assert all(r["output"] == SLEEP_S for r in records.values())
    # The interrupted one ran again, and says so; the pending ones simply ran, once.
    assert REQUEUED_AFTER_CRASH in records[interrupted]["logs"]
    assert records[interrupted]["logs"].count("re-queued") == 1
    for prediction_id in ids[1:]:
        assert "re-queued" not in records[prediction_id]["logs"], prediction_id
        assert records[prediction_id]["logs"].count(f"sleeping {SLEEP_S} s") == 1


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(True, id="process-group"),  # systemd's KillMode=control-group, Ctrl-C
        pytest.param(False, id="server-only"),  # docker stop, kill <pid>
    ],
)
def test_sigterm_drains_then_the_restart_runs_the_rest(serve: Serve, group: bool) -> None:
    with serve() as server:
        ids, interrupted = queue_sleeps(server)
        started = time.monotonic()
        sigterm(server, group=group)
        took = time.monotonic() - started
        log = server.log()

    assert took < SHUTDOWN_WITHIN_S, f"shutdown took {took:.1f} s"
    assert "Application shutdown complete" in log, log

    with serve() as server, server.client() as client:
        records = wait_terminal(client, ids, timeout=N * SLEEP_S + 15)

    assert statuses(records) == dict.fromkeys(ids, "succeeded"), {
        i: r["error"] for i, r in records.items() if r["error"]
    }
    # The one processing at SIGTERM finished within the grace, or was put back (not counted as
    # a crash) and ran after the restart; no prediction ran twice to completion either way.
    for prediction_id, record in records.items():
        assert REQUEUED_AFTER_CRASH not in record["logs"], prediction_id
        if prediction_id != interrupted:
            assert record["logs"].count(f"sleeping {SLEEP_S} s") == 1, (prediction_id, record)


def test_sigterm_puts_back_a_prediction_that_outlasts_the_grace(serve: Serve) -> None:
    """A prediction longer than the shutdown grace is re-queued, not failed, and not counted
    against the re-run limit: a graceful stop is not the model's fault."""
    with serve() as server:
        with server.client() as client:
            long_one = create(client, SLEEPS, {"seconds": 25})
            wait_stored_processing(client, [long_one])
        started = time.monotonic()
        sigterm(server, group=False)
        took = time.monotonic() - started
    assert took < SHUTDOWN_WITHIN_S, f"shutdown took {took:.1f} s"

    with serve() as server, server.client() as client:
        record = get(client, long_one)
        assert record["status"] in ("pending", "processing"), record
        assert REQUEUED_AFTER_SHUTDOWN in record["logs"]
        wait_stored_processing(client, [long_one])
        sigkill(server)  # one crash: still within max_reruns=1, since the stop didn't count

    with serve() as server, server.client() as client:
        record = wait_requeued(client, long_one)
        assert record["status"] in ("pending", "processing"), record
        assert REQUEUED_AFTER_CRASH in record["logs"]


def test_a_prediction_interrupted_twice_fails_with_an_internal_error(serve: Serve) -> None:
    # max_reruns=1 (the default): the first interruption re-runs it, the second fails it.
    with serve() as server:
        with server.client() as client:
            doomed = create(client, SLEEPS, {"seconds": 20})
            wait_stored_processing(client, [doomed])
        sigkill(server)

    with serve() as server:
        with server.client() as client:
            assert REQUEUED_AFTER_CRASH in wait_requeued(client, doomed)["logs"]
            wait_stored_processing(client, [doomed])
        sigkill(server)

    with serve() as server, server.client() as client:
        wait_for(
            lambda: stored_ids(client, "failed") == {doomed},
            timeout=20,
            what="the prediction to be failed once the crashed server's lease expired",
        )
        record = get(client, doomed)

    assert record["status"] == "failed", record
    assert record["error"]["source"] == "internal", record["error"]
    message = record["error"]["message"]
    assert "the server stopped while this prediction was processing" in message
    assert "2 attempts" in message
    assert record["output"] is None
    assert record["completed_at"] is not None


def test_every_acknowledged_create_survives_sigkill(serve: Serve) -> None:
    n = 30
    with serve() as server:
        limits = httpx.Limits(max_connections=n)
        with server.client(limits=limits) as client, ThreadPoolExecutor(n) as pool:
            futures = [
                pool.submit(create, client, ECHO, {"text": f"hello {i}", "n": 1 + i % 10})
                for i in range(n)
            ]
            acknowledged = {f.result(): i for i, f in enumerate(futures)}
            sigkill(server)  # the moment the last 201 is in
    assert len(acknowledged) == n

    with serve() as server, server.client() as client:
        listed = client.get("/v1/predictions", params={"limit": 1000})
        records = wait_terminal(client, acknowledged, timeout=30)

    assert listed.status_code == 200, listed.text
    assert {p["id"] for p in listed.json()["results"]} == set(acknowledged)
    assert statuses(records) == dict.fromkeys(acknowledged, "succeeded")
    for prediction_id, i in acknowledged.items():
        assert records[prediction_id]["input"] == {"text": f"hello {i}", "n": 1 + i % 10}
        assert records[prediction_id]["output"] == {"text": f"hello {i}", "n": 1 + i % 10}


def test_a_finished_prediction_reads_back_after_restart(serve: Serve) -> None:
    """What a finished prediction returned is stored as it was: a bare number output too."""
    with serve() as server, server.client() as client:
        response = client.post(
            "/v1/predictions",
            json={"model": SLEEPS, "input": {"seconds": 0.5}},
            headers={"Prefer": "wait=30"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "succeeded"
        assert response.json()["output"] == 0.5
        prediction_id = response.json()["id"]
        sigterm(server)

    with serve() as server, server.client() as client:
        record = get(client, prediction_id)
        listed = client.get("/v1/predictions")
    assert record["status"] == "succeeded"
    assert record["output"] == 0.5
    assert listed.status_code == 200, listed.text
    assert [p["output"] for p in listed.json()["results"]] == [0.5]


def test_sigkill_leaves_no_replica_process_behind(repo: Path, data_dir: Path) -> None:
    with running_server(repo, data_dir) as server:
        workers = [pid for pid in session_processes(server.pid) if pid != server.pid]
        assert len(workers) >= 2, "one replica process per model (sleeps, echo)"
        sigkill(server)
        assert session_processes(server.pid) == []
