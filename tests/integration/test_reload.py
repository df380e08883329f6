"""Reload: a running `foretell serve` follows its repository. A version folder put in place is
found (by the watcher, or at SIGHUP with watching off: the server lives on) and serves; one
removed with a prediction running lets it finish, then is gone (404); a broken manifest added
shows as a failed version while the others serve on. Versions are real folders here (copies of
fixture models), put in place by a rename as a careful copy is."""

from __future__ import annotations

import os
import shutil
import signal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from _server import FIXTURE_MODELS, Server, running_server, wait_for

DEADLINE_S = 120.0  # a busy machine's watcher, scan and replica start; normally well under 2 s
NO_WATCH = {"FORETELL_WATCH_REPOSITORY": "false"}
MAX_CONNECTIONS = 12  # fresh connections, so that both workers answer some
STARTED = "Application startup complete"  # uvicorn's, once a worker's lifespan has run


def put_version(repo: Path, ref: str, fixture: str, staging: Path) -> Path:
    """Copy fixture model `fixture`'s version 1 to `repo/<ref>` (owner/name/number), whole at
    once: copied beside the repository, then renamed into it."""
    target = repo / ref
    copy = staging / ref.replace("/", "-")
    shutil.copytree(
        FIXTURE_MODELS / fixture / "1", copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    copy.rename(target)
    return target


def make_repo(tmp_path: Path, versions: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    for ref, fixture in versions.items():
        put_version(repo, ref, fixture, staging)
    return repo


def status_of(client: httpx.Client, owner: str, name: str, number: int) -> str | None:
    """The version's deployment status as its model's record shows it; None while unlisted."""
    response = client.get(f"/v1/models/{owner}/{name}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    for version in response.json()["versions"]:
        if version["version_number"] == number:
            status: str = version["deployment"]["status"]
            return status
    return None


def settled(client: httpx.Client, owner: str, name: str, number: int) -> str | None:
    status = status_of(client, owner, name, number)
    return status if status in ("ready", "failed") else None


def predict(client: httpx.Client, model: str, model_input: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/v1/predictions",
        json={"model": model, "input": model_input},
        headers={"Prefer": "wait=30"},
    )
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def assert_echoes(server: Server, client: httpx.Client, model: str) -> None:
    record = predict(client, model, {"text": "hi"})
    assert record["status"] == "succeeded", (record, server.log_tail())
    assert record["output"] == {"text": "hi", "n": 1}


def test_a_version_folder_put_in_place_is_watched_in_and_serves(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"acme/echo/1": "echo"})
    with running_server(repo, tmp_path / "data") as server, server.client() as client:
        put_version(repo, "acme/echo/2", "echo", tmp_path / "staging")
        status = wait_for(
            lambda: settled(client, "acme", "echo", 2), timeout=DEADLINE_S, what="version 2"
        )
        assert status == "ready", server.log_tail()
        assert_echoes(server, client, "acme/echo:2")
        assert "model repository: added acme/echo:2" in server.log()


def test_with_watching_off_sighup_reads_the_repository_again_and_the_server_lives_on(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, {"acme/echo/1": "echo"})
    with (
        running_server(repo, tmp_path / "data", env=NO_WATCH) as server,
        server.client() as client,
    ):
        put_version(repo, "acme/echo/2", "echo", tmp_path / "staging")
        os.kill(server.pid, signal.SIGHUP)  # the server process only, as `kill -HUP` does
        status = wait_for(
            lambda: settled(client, "acme", "echo", 2), timeout=DEADLINE_S, what="version 2"
        )
        assert status == "ready", server.log_tail()
        assert server.alive()
        assert_echoes(server, client, "acme/echo:2")
        log = server.log()
        assert "SIGHUP: reading the model repository again" in log
        assert "watching model repository" not in log


def test_a_removed_version_lets_its_running_prediction_finish_then_is_gone(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, {"acme/sleeps/1": "sleeps", "acme/echo/1": "echo"})
    with running_server(repo, tmp_path / "data") as server, server.client() as client:
        response = client.post(
            "/v1/predictions", json={"model": "acme/sleeps", "input": {"seconds": 8}}
        )
        assert response.status_code == 201, response.text
        prediction_id = response.json()["id"]

        def get() -> dict[str, Any]:
            found = client.get(f"/v1/predictions/{prediction_id}")
            assert found.status_code == 200, found.text
            record: dict[str, Any] = found.json()
            return record

        wait_for(lambda: get()["status"] == "processing", timeout=DEADLINE_S, what="running")
        shutil.rmtree(repo / "acme" / "sleeps")
        wait_for(
            lambda: client.get("/v1/models/acme/sleeps").status_code == 404,
            timeout=DEADLINE_S,
            what="acme/sleeps to be gone",
        )
        assert get()["status"] == "processing"  # hidden at once, its running work not stopped
        refused = client.post(
            "/v1/predictions", json={"model": "acme/sleeps:1", "input": {"seconds": 0}}
        )
        assert refused.status_code == 404, refused.text

        finished = wait_for(
            lambda: r if (r := get())["status"] != "processing" else None,
            timeout=DEADLINE_S,
            what="the prediction to finish",
        )
        assert (finished["status"], finished["output"]) == ("succeeded", 8), finished
        wait_for(
            lambda: "model repository: removed acme/sleeps:1" in server.log(),
            timeout=DEADLINE_S,
            what="the drained version to stop",
        )
        assert_echoes(server, client, "acme/echo")


def test_a_broken_manifest_added_is_a_failed_version_and_the_others_serve_on(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, {"acme/echo/1": "echo"})
    with running_server(repo, tmp_path / "data") as server, server.client() as client:
        put_version(repo, "acme/broken/1", "broken-manifest", tmp_path / "staging")
        status = wait_for(
            lambda: settled(client, "acme", "broken", 1), timeout=DEADLINE_S, what="the broken one"
        )
        assert status == "failed"
        version = client.get("/v1/models/acme/broken").json()["versions"][0]
        assert "foretell.yaml" in version["deployment"]["error"], version
        assert_echoes(server, client, "acme/echo")
        refused = predict(client, "acme/broken", {"text": "hi"})
        assert refused["status"] == "failed", refused


def test_with_workers_sighup_is_passed_on_and_every_worker_serves_the_new_version(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, {"acme/echo/1": "echo"})
    args = ["--workers", "2"]
    with running_server(repo, tmp_path / "data", env=NO_WATCH, args=args) as server:
        # Each worker reads the repository as it starts: both must have before the new folder.
        wait_for(lambda: server.log().count(STARTED) == 2, timeout=DEADLINE_S, what="2 workers")
        put_version(repo, "acme/echo/2", "echo", tmp_path / "staging")
        os.kill(server.pid, signal.SIGHUP)  # the supervisor
        wait_for(
            lambda: server.log().count("model repository: added acme/echo:2") == 2,
            timeout=DEADLINE_S,
            what="both workers to find version 2",
        )
        assert server.alive()
        for _ in range(MAX_CONNECTIONS):  # each on a fresh connection: either worker takes it
            with server.client() as client:
                check = partial(settled, client, "acme", "echo", 2)
                status = wait_for(check, timeout=DEADLINE_S, what="version 2 to settle")
                assert status == "ready", server.log_tail()
                assert_echoes(server, client, "acme/echo:2")


def finished(client: httpx.Client, url: str) -> dict[str, Any] | None:
    record: dict[str, Any] = client.get(url).json()
    return record if record["status"] in ("succeeded", "failed", "canceled") else None


GATED_SETUP = """
import time
from pathlib import Path

from foretell.sdk import Predictor


class Gated(Predictor):
    def setup(self) -> None:  # loads once the test opens the gate
        gate = Path(__file__).with_name("open")
        deadline = time.monotonic() + 300
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def predict(self, x: int) -> int:
        return x
"""


def test_a_version_found_while_serving_loads_without_taking_the_server_out_of_service(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, {"acme/echo/1": "echo"})
    folder = tmp_path / "staging" / "gated"
    folder.mkdir()
    (folder / "predict.py").write_text(GATED_SETUP)
    (folder / "foretell.yaml").write_text("runtime: python\npredictor: predict.py:Gated\n")
    with running_server(repo, tmp_path / "data") as server, server.client() as client:
        (repo / "acme" / "gated").mkdir()
        folder.rename(repo / "acme" / "gated" / "1")
        wait_for(
            lambda: status_of(client, "acme", "gated", 1) == "deploying",
            timeout=DEADLINE_S,
            what="acme/gated:1 deploying",
        )
        health = client.get("/health/ready")
        assert health.status_code == 200, health.text  # echo serves on
        # Natively a prediction waits for a loading version, as at startup.
        waiting = client.post("/v1/predictions", json={"model": "acme/gated", "input": {"x": 7}})
        assert waiting.status_code == 201, waiting.text
        assert_echoes(server, client, "acme/echo")

        (repo / "acme" / "gated" / "1" / "open").touch()
        status = wait_for(
            lambda: settled(client, "acme", "gated", 1), timeout=DEADLINE_S, what="gated ready"
        )
        assert status == "ready", server.log_tail()
        record = wait_for(
            lambda: finished(client, waiting.json()["urls"]["get"]),
            timeout=DEADLINE_S,
            what="the waiting prediction",
        )
        assert record["status"] == "succeeded", record
        assert record["output"] == 7
