"""`foretell serve --workers 2`: two API processes on one port and one store (one SQLite file, or
a PostgreSQL database), supervised by the process started. Both take requests; a worker SIGKILLed
mid-work is started again and its predictions are taken over once its leases expire, each ending
once; SIGTERM stops them all, and none outlives a SIGKILLed supervisor.

The fixture model `records-runs` (two replicas per worker) appends "start TAG PID" and "finish
TAG PID" to a file, and in between waits until the test creates `release`.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import (
    Server,
    build_repository,
    running_server,
    session_processes,
    sigterm,
    wait_for,
)

pytestmark = pytest.mark.slow

MODEL = "fixtures/records-runs"
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
MAX_CREATES = 40  # fresh connections until both workers run something


def ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            text = stat.read()
    except OSError:
        return None
    return int(text[text.rfind(")") + 2 :].split()[1])


def workers(server: Server) -> set[int]:
    """The supervisor's API worker processes (multiprocessing's spawned children)."""
    found = set()
    for pid in session_processes(server.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if ppid(pid) == server.pid and b"spawn_main" in cmdline:
            found.add(pid)
    return found


def runs(folder: Path) -> list[tuple[str, str, int]]:
    log = folder / "runs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(event, tag, int(pid)) for event, tag, pid in (line.split() for line in lines)]


def create(server: Server, tag: str) -> str:
    """A prediction made on a connection of its own: the kernel hands it to either worker."""
    with server.client() as c:
        response = c.post(
            "/v1/predictions", json={"model": MODEL, "input": {"tag": tag, "seconds": 60}}
        )
    assert response.status_code == 201, response.text
    prediction_id: str = response.json()["id"]
    return prediction_id


def test_two_workers_share_the_port_and_the_store_and_take_over_a_killed_ones_work(
    tmp_path: Path, db_url: str
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    repo = build_repository(tmp_path, demo=False, fixtures=["records-runs"])
    # A killed worker's work goes on 4 s later; a live one, renewing every 1.3 s, keeps its own.
    env = {"FORETELL_DB": db_url, "FORETELL_LEASE_S": "4", "RECORDS_RUNS_DIR": str(folder)}
    with running_server(repo, tmp_path / "data", env=env, args=["--workers", "2"]) as server:
        first = wait_for(lambda: w if len(w := workers(server)) == 2 else None, timeout=30)
        made: dict[str, str] = {}
        running_on: dict[str, int] = {}  # tag -> the worker whose replica runs it
        while len(set(running_on.values())) < 2:
            assert len(made) < MAX_CREATES, f"every prediction went to one worker: {running_on}"
            tag = f"t{len(made)}"
            made[tag] = create(server, tag)
            for _, run_tag, pid in runs(folder):
                if (parent := ppid(pid)) in first:
                    running_on[run_tag] = parent
        # Any worker answers for any prediction: each GET on a connection of its own.
        for prediction_id in made.values():
            with server.client() as c:
                assert c.get(f"/v1/predictions/{prediction_id}").status_code == 200

        victim = next(iter(set(running_on.values())))
        os.kill(victim, signal.SIGKILL)  # its replicas die with it; the supervisor starts another
        killed = {tag for tag, worker in running_on.items() if worker == victim}
        wait_for(
            lambda: len(w := workers(server)) == 2 and victim not in w,
            timeout=30,
            what="the supervisor to replace the killed worker",
        )

        # Runs on the live worker finish now; the killed one's are taken over once its leases
        # expire, and run again.
        (folder / "release").touch()

        def ended() -> dict[str, dict[str, Any]] | None:
            with server.client() as c:
                records = {t: c.get(f"/v1/predictions/{i}").json() for t, i in made.items()}
            return records if all(r["status"] in TERMINAL for r in records.values()) else None

        records = wait_for(ended, timeout=90, what="every prediction to end")
        assert sigterm(server) == 0  # and every worker and replica gone (sigterm checks)

    assert {r["status"] for r in records.values()} == {"succeeded"}, {
        t: (r["status"], r["error"], r["logs"])
        for t, r in records.items()
        if r["status"] != "succeeded"
    }
    finished = Counter(tag for event, tag, _ in runs(folder) if event == "finish")
    assert finished == Counter(made.keys()), "each ran to completion once"
    starts = Counter(tag for event, tag, _ in runs(folder) if event == "start")
    for tag in killed:  # running on the killed worker: run again elsewhere
        assert starts[tag] == 2, starts
        assert "re-queued: the server stopped" in records[tag]["logs"]


def test_no_worker_outlives_a_sigkilled_supervisor(tmp_path: Path) -> None:
    repo = build_repository(tmp_path, demo=False, fixtures=["echo"])
    with running_server(repo, tmp_path / "data", args=["--workers", "2"]) as server:
        wait_for(lambda: len(workers(server)) == 2, timeout=30, what="two workers")
        os.kill(server.pid, signal.SIGKILL)  # the supervisor alone, as `kill -9 PID` does
        server.process.wait(10)
        wait_for(
            lambda: not session_processes(server.pid),
            timeout=10,
            what="the workers and their replicas to die with the supervisor",
        )
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/health/live", timeout=2)
