"""Scale to zero and back, on a real `foretell serve`: a model with `replicas: {min: 0, max: 2,
idle_s: 1}` has no worker process while idle, starts one for its first prediction (whose record
shows the setup time), lets it go after a second idle, and starts one again; a burst that waits
past `target_wait_s` starts a second replica, and idle takes both away.

Worker processes are found by the server's session id (each server runs in its own session)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import Server, build_repository, running_server, session_processes, wait_for

pytestmark = pytest.mark.slow

MODEL = "fixtures/scales-to-zero"
# Far past the 1 s idle_s and a worker's start on a loaded machine: the polls end sooner.
DEADLINE_S = 60.0


def seconds(duration: str) -> float:
    found = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", duration)
    assert found, duration
    return float(found.group(1))


def workers(server: Server) -> set[int]:
    return set(session_processes(server.pid)) - {server.pid}


def predict(client: httpx.Client, seconds: float = 0.0) -> dict[str, Any]:
    response = client.post(
        "/v1/predictions",
        json={"model": MODEL, "input": {"seconds": seconds}},
        headers={"Prefer": "wait=60"},
    )
    assert response.status_code in (200, 201), response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "succeeded", record
    return record


def deployment(client: httpx.Client) -> dict[str, Any]:
    response = client.get(f"/v1/models/{MODEL}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["versions"][0]["deployment"]
    return found


def none_running(server: Server, client: httpx.Client) -> bool:
    return not workers(server) and deployment(client)["replicas"]["running"] == 0


def serving(tmp_path: Path) -> Any:
    repo = build_repository(tmp_path, demo=False, fixtures=["scales-to-zero"])
    env = {"SCALES_TO_ZERO_FAIL_IF": str(tmp_path / "fail-setup")}
    return running_server(repo, tmp_path / "data", env=env)


def test_no_worker_while_idle_one_for_a_prediction_then_none_again(tmp_path: Path) -> None:
    with serving(tmp_path) as server, server.client() as client:
        # Ready once its signature is known; the replica that told it stops.
        wait_for(lambda: none_running(server, client), timeout=DEADLINE_S, what="no worker")
        assert deployment(client)["replicas"] == {"min": 0, "max": 2, "running": 0}

        first = predict(client)
        assert seconds(first["setup_time"]) > 0, "its replica was started for it"
        assert first["output"] != server.pid

        wait_for(lambda: none_running(server, client), timeout=DEADLINE_S, what="idle stop")

        second = predict(client)
        assert seconds(second["setup_time"]) > 0
        assert second["output"] != first["output"], "a new process, not the stopped one"
        wait_for(lambda: none_running(server, client), timeout=DEADLINE_S, what="idle stop")


def test_a_burst_that_waits_starts_a_second_replica_and_idle_takes_both(tmp_path: Path) -> None:
    with serving(tmp_path) as server, server.client() as client:
        wait_for(lambda: none_running(server, client), timeout=DEADLINE_S, what="no worker")
        ids = []
        # 10 x 1 s on one replica: its queue waits past target_wait_s, and the second replica
        # has seconds to start (on a busy machine) before the first could have run them all.
        for _ in range(10):
            response = client.post(
                "/v1/predictions", json={"model": MODEL, "input": {"seconds": 1.0}}
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        most = wait_for(
            lambda: len(workers(server)) if len(workers(server)) >= 2 else None,
            timeout=DEADLINE_S,
            what="a second replica",
        )
        assert most == 2, "max is 2"
        records = [client.get(f"/v1/predictions/{i}", headers={"Prefer": "wait=60"}) for i in ids]
        finished = [r.json() for r in records]
        assert all(r["status"] == "succeeded" for r in finished), finished
        assert len({r["output"] for r in finished}) == 2, "both replicas ran some"
        wait_for(lambda: none_running(server, client), timeout=DEADLINE_S, what="both idle")


def test_a_running_version_rescaled_to_a_range_follows_it(tmp_path: Path) -> None:
    with serving(tmp_path) as server, server.client() as client:
        path = f"/v1/models/{MODEL}/versions/1/deployment"
        wait_for(lambda: none_running(server, client), timeout=DEADLINE_S, what="no worker")

        fixed = client.post(path, json={"replicas": 2})
        assert fixed.status_code == 200, fixed.text
        wait_for(lambda: len(workers(server)) == 2, timeout=DEADLINE_S, what="min 2 running")

        ranged = client.post(path, json={"replicas": {"min": 0, "max": 2, "idle_s": 1}})
        assert ranged.status_code == 200, ranged.text
        wait_for(lambda: none_running(server, client), timeout=DEADLINE_S, what="idle stops")
        assert deployment(client)["replicas"] == {"min": 0, "max": 2, "running": 0}
        assert predict(client)["status"] == "succeeded"


def test_a_start_from_zero_that_fails_fails_its_prediction_as_data_and_the_next_starts(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as server, server.client() as client:
        wait_for(lambda: none_running(server, client), timeout=DEADLINE_S, what="no worker")
        (tmp_path / "fail-setup").touch()
        response = client.post(
            "/v1/predictions", json={"model": MODEL, "input": {}}, headers={"Prefer": "wait=60"}
        )
        assert response.status_code in (200, 201), response.text
        failed = response.json()
        assert failed["status"] == "failed", failed
        assert failed["error"]["source"] == "internal"
        assert "setup refused while" in failed["error"]["message"]
        record = client.get(f"/v1/models/{MODEL}").json()["versions"][0]
        assert record["status"] == "ready", "the version serves on: the next call tries again"
        assert "setup refused while" in record["deployment"]["logs"]

        (tmp_path / "fail-setup").unlink()
        assert predict(client)["status"] == "succeeded"
