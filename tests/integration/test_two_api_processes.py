"""Two real `foretell serve` processes on one store (a PostgreSQL database, or one SQLite file on
this machine): a prediction made on A is read, waited on, canceled and listed on B; SIGKILL A
mid-work and B takes its unfinished predictions over once A's leases expire, each ending once
and none run twice to completion.

The fixture model `records-runs` (two replicas) appends "start TAG PID" and "finish TAG PID" to
a file as each run begins and ends, and in between waits until the test creates `release`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import Server, build_repository, running_server, sigkill, wait_for

pytestmark = pytest.mark.slow

MODEL = "fixtures/records-runs"
LONG_S = 60.0  # a run waits this long for the release at most: far past the test's checks
# The servers' leases: a killed one's work is taken over within a few seconds, and a live one
# renewing every 1.3 s keeps its own even on a loaded machine (2 s was too tight there).
LEASE_S = 4
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}


@contextmanager
def two_servers(tmp_path: Path, db_url: str) -> Iterator[tuple[Server, Server, Path]]:
    """A, then B, on the store `db_url`, each with its own data dir (as on two machines); the
    folder the model records its runs in."""
    runs = tmp_path / "runs"
    runs.mkdir()
    repo = build_repository(tmp_path, demo=False, fixtures=["records-runs"])
    env = {"FORETELL_DB": db_url, "FORETELL_LEASE_S": str(LEASE_S), "RECORDS_RUNS_DIR": str(runs)}
    # B starts once A made the first admin key: one key for both, read from A's data dir.
    with (
        running_server(repo, tmp_path / "a", env=env) as a,
        running_server(repo, tmp_path / "b", env=env) as b,
    ):
        yield a, b, runs


def client(server: Server, key_from: Server) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {key_from.admin_key}"}
    )


def create(c: httpx.Client, tag: str, seconds: float = LONG_S) -> str:
    response = c.post(
        "/v1/predictions", json={"model": MODEL, "input": {"tag": tag, "seconds": seconds}}
    )
    assert response.status_code == 201, response.text
    prediction_id: str = response.json()["id"]
    return prediction_id


def get(c: httpx.Client, prediction_id: str, **headers: str) -> dict[str, Any]:
    response = c.get(f"/v1/predictions/{prediction_id}", headers=headers)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def runs(folder: Path) -> list[tuple[str, str, int]]:
    """(event, tag, pid) for each line the model wrote: event is start or finish."""
    log = folder / "runs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(event, tag, int(pid)) for event, tag, pid in (line.split() for line in lines)]


def started(folder: Path, *tags: str) -> bool:
    begun = {tag for event, tag, _ in runs(folder) if event == "start"}
    return begun >= set(tags)


def test_made_on_a_then_read_waited_on_and_listed_on_b(tmp_path: Path, db_url: str) -> None:
    with (
        two_servers(tmp_path, db_url) as (a, b, folder),
        client(a, a) as on_a,
        client(b, a) as on_b,
    ):
        made = create(on_a, "shared")
        # B reads the store: A's live state shows there as soon as A has committed it.
        wait_for(
            lambda: get(on_b, made)["status"] == "processing",
            timeout=30,
            what="B to see A's prediction processing",
        )
        begun = time.monotonic()
        record = get(on_b, made, prefer="wait=1")  # not over yet: answered as it stands
        assert record["status"] == "processing"
        assert 0.9 <= time.monotonic() - begun < 10

        answered: dict[str, Any] = {}

        def wait_on_b() -> None:
            with client(b, a) as waiting:
                response = waiting.get(f"/v1/predictions/{made}", headers={"Prefer": "wait=50"})
                answered.update(response=response, at=time.monotonic())

        waiter = threading.Thread(target=wait_on_b)
        waiter.start()
        time.sleep(0.5)  # let B begin its wait before the end
        (folder / "release").touch()
        released = time.monotonic()
        waiter.join(60)
        response = answered["response"]
        assert response.status_code == 200, response.text
        assert response.headers["preference-applied"] == "wait=50"
        assert response.json()["status"] == "succeeded"
        assert response.json()["output"] == "shared"
        # Heard from A's end (NOTIFY, or SQLite's notices table), not the end of the wait.
        assert answered["at"] - released < 10

        listed = on_b.get("/v1/predictions").json()["results"]
        assert [p["id"] for p in listed] == [made]
        assert listed[0]["status"] == "succeeded"


def test_cancel_on_b_stops_the_prediction_running_on_a(tmp_path: Path, db_url: str) -> None:
    with (
        two_servers(tmp_path, db_url) as (a, b, folder),
        client(a, a) as on_a,
        client(b, a) as on_b,
    ):
        running, other = create(on_a, "running"), create(on_a, "other")
        create(on_a, "queued")  # the model's two replicas: two run, one waits
        wait_for(lambda: started(folder, "running", "other"), timeout=30, what="two runs")

        response = on_b.post(f"/v1/predictions/{running}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "canceled"
        assert get(on_a, running)["status"] == "canceled"  # A wrote it: A ran it
        assert get(on_a, other)["status"] == "processing"
        # The replica it freed takes the queued one, on A.
        wait_for(lambda: started(folder, "queued"), timeout=30, what="the queued one to start")

        again = on_b.post(f"/v1/predictions/{running}/cancel")
        assert again.status_code == 409, again.text
        missing = on_b.post("/v1/predictions/no-such-id/cancel")
        assert missing.status_code == 404, missing.text
        (folder / "release").touch()


def test_b_takes_over_a_killed_as_work_once_its_lease_expires(tmp_path: Path, db_url: str) -> None:
    tags = [f"t{i}" for i in range(6)]
    with two_servers(tmp_path, db_url) as (a, b, folder), client(b, a) as on_b:
        with client(a, a) as on_a:
            made = {tag: create(on_a, tag) for tag in tags}  # two run on A, four wait there
        made["on-b"] = create(on_b, "on-b")
        wait_for(lambda: started(folder, "t0", "t1", "on-b"), timeout=30, what="runs on A and B")
        a_pids = {pid for event, tag, pid in runs(folder) if tag in ("t0", "t1")}
        # While A lives and renews, B takes none of its work, whatever B's replicas are free for.
        time.sleep(2 * LEASE_S)
        assert {tag for _, tag, _ in runs(folder)} == {"t0", "t1", "on-b"}

        sigkill(a)  # the replicas die with it: A's two runs never finish
        killed = time.monotonic()

        def b_runs_as_work() -> bool:
            return any(tag in tags and pid not in a_pids for _, tag, pid in runs(folder))

        wait_for(b_runs_as_work, timeout=60, what="B to run A's work")
        taken_s = time.monotonic() - killed
        (folder / "release").touch()

        def ended() -> dict[str, dict[str, Any]] | None:
            records = {tag: get(on_b, i) for tag, i in made.items()}
            return records if all(r["status"] in TERMINAL for r in records.values()) else None

        records = wait_for(ended, timeout=60, what="every prediction to end")

    assert {tag: r["status"] for tag, r in records.items()} == dict.fromkeys(made, "succeeded")
    finished = Counter(tag for event, tag, _ in runs(folder) if event == "finish")
    assert finished == Counter(made.keys()), "each ran to completion once"
    starts = Counter(tag for event, tag, _ in runs(folder) if event == "start")
    assert starts == Counter(
        {"t0": 2, "t1": 2} | dict.fromkeys(["t2", "t3", "t4", "t5", "on-b"], 1)
    )
    assert not a_pids & {pid for event, _, pid in runs(folder) if event == "finish"}
    for tag in ("t0", "t1"):  # interrupted on A, re-run on B
        assert "re-queued: the server stopped" in records[tag]["logs"]
    print(f"B began A's work {taken_s:.1f} s after the kill (lease {LEASE_S} s)")


def test_cancel_on_b_of_work_a_killed_a_left(tmp_path: Path, db_url: str) -> None:
    with two_servers(tmp_path, db_url) as (a, b, folder), client(b, a) as on_b:
        with client(a, a) as on_a:
            running = create(on_a, "running")  # the model's two replicas: two run, one waits
            create(on_a, "other")
            queued = create(on_a, "queued")
        wait_for(lambda: started(folder, "running", "other"), timeout=30, what="two runs on A")
        sigkill(a)
        # Nobody renews A's leases now: B cancels them once they expire (or, had B taken them
        # over first, where they then run).
        for prediction_id in (queued, running):
            begun = time.monotonic()
            response = on_b.post(f"/v1/predictions/{prediction_id}/cancel")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "canceled"
            assert time.monotonic() - begun < LEASE_S + 10
        (folder / "release").touch()
    assert "queued" not in {tag for _, tag, _ in runs(folder)}
