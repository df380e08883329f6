"""No replica outlives its server: SIGKILL the server process alone (as `kill -9 PID` does: its
replicas get no signal) while its replicas are busy, and they are gone within a second; after a
restart every prediction reaches one terminal state, and each ran once more at most, with no run
from before the crash carrying on beside its re-run (the model's side effects twice).

The fixture model `records-runs` appends "start TAG PID" and "finish TAG PID" to a file as each
run begins and ends, and in between waits until the test creates a `release` file.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import (
    EXIT_TIMEOUT_S,
    Server,
    build_repository,
    running_server,
    session_processes,
    wait_for,
)

pytestmark = pytest.mark.slow

MODEL = "fixtures/records-runs"  # two replicas
TAGS = ("first", "second", "third", "fourth")  # two run, two wait behind them
LONG_S = 60.0  # how long a run waits for the release at most: far past the test's checks
# The issue asks for 1 s; the bound leaves room for a loaded machine, and the time is printed.
GONE_WITHIN_S = 5.0
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
REQUEUED_AFTER_CRASH = "re-queued: the server stopped while this prediction was processing"


def sigkill_server_only(server: Server) -> int:
    """SIGKILL the server's process, not its group, as `kill -9 PID` or the OOM killer do; wait
    for it alone. Returns its exit code."""
    os.kill(server.pid, signal.SIGKILL)
    return server.process.wait(EXIT_TIMEOUT_S)


def runs(folder: Path) -> list[tuple[str, str, int]]:
    """(event, tag, pid) for each line the model wrote: event is start or finish."""
    log = folder / "runs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(event, tag, int(pid)) for event, tag, pid in (line.split() for line in lines)]


def stored_ids(client: httpx.Client, status: str) -> set[str]:
    """Ids the database holds with `status` (listing flushes the store's writer first)."""
    response = client.get("/v1/predictions", params={"status": status, "limit": 1000})
    assert response.status_code == 200, response.text
    return {p["id"] for p in response.json()["results"]}


def create(client: httpx.Client, tag: str) -> str:
    body = {"model": MODEL, "input": {"tag": tag, "seconds": LONG_S}}
    response = client.post("/v1/predictions", json=body)
    assert response.status_code == 201, response.text
    prediction_id: str = response.json()["id"]
    return prediction_id


def get(client: httpx.Client, prediction_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/predictions/{prediction_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def all_terminal(client: httpx.Client, ids: dict[str, str]) -> dict[str, Any] | None:
    """The records by tag once every one is terminal; else None."""
    records = {tag: get(client, prediction_id) for tag, prediction_id in ids.items()}
    return records if all(r["status"] in TERMINAL for r in records.values()) else None


def test_busy_replicas_die_with_a_sigkilled_server_and_nothing_runs_twice_at_once(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    repo = build_repository(tmp_path, demo=False, fixtures=["records-runs"])
    data_dir = tmp_path / "data"
    # The restart takes over the killed server's work once its leases expire: 2 s, not 15.
    env = {"RECORDS_RUNS_DIR": str(folder), "FORETELL_LEASE_S": "2"}

    with running_server(repo, data_dir, env=env) as server:
        replicas = set(session_processes(server.pid)) - {server.pid}
        assert len(replicas) == 2, "the model asks for two replicas"
        with server.client() as client:
            ids = {tag: create(client, tag) for tag in TAGS}
            started = wait_for(
                lambda: runs(folder) if len(runs(folder)) == 2 else None,
                timeout=20,
                what="both replicas to start a prediction",
            )
            busy = {tag for _, tag, _ in started}
            wait_for(
                lambda: {ids[tag] for tag in busy} <= stored_ids(client, "processing"),
                timeout=20,
                what="the running predictions to be stored as processing",
            )
        assert {pid for _, _, pid in started} == replicas, "each replica runs one"

        killed = time.monotonic()
        sigkill_server_only(server)
        deadline = killed + GONE_WITHIN_S
        while (survivors := session_processes(server.pid)) and time.monotonic() < deadline:
            time.sleep(0.01)
        took = time.monotonic() - killed
        print(f"replica processes gone {took:.3f} s after the server's SIGKILL")
        assert survivors == [], (
            f"replica processes {survivors} outlived their SIGKILLed server by "
            f"{GONE_WITHIN_S:g} s, still running the predictions {sorted(busy)}"
        )

    (folder / "release").touch()  # from now on each run finishes at once
    with running_server(repo, data_dir, env=env) as server, server.client() as client:
        records = wait_for(
            lambda: all_terminal(client, ids),
            timeout=30,
            what="every prediction to finish after the restart",
        )

    assert {t: r["status"] for t, r in records.items()} == dict.fromkeys(TAGS, "succeeded")
    assert {t: r["output"] for t, r in records.items()} == {t: t for t in TAGS}
    starts = Counter(tag for event, tag, _ in runs(folder) if event == "start")
    finishes = Counter(tag for event, tag, _ in runs(folder) if event == "finish")
    # The interrupted ones ran again once, after the restart; none finished twice: the runs cut
    # short by the crash never went on.
    assert starts == {tag: 2 if tag in busy else 1 for tag in TAGS}, runs(folder)
    assert finishes == dict.fromkeys(TAGS, 1), runs(folder)
    for tag in TAGS:
        assert records[tag]["logs"].count(REQUEUED_AFTER_CRASH) == (tag in busy), records[tag]
