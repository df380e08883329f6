"""`foretell models load | unload | scale | rescan` against a fake server: the route and body
each sends, what it prints; and that a deployment change waits for the version to settle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cli_fakes import FakeServer
from typer.testing import CliRunner, Result

from foretell.cli.main import app as cli
from foretell.client import Client
from foretell.client.client import SETTLE_TIMEOUT_S

KEY = "ft_12345678_secret"
DEPLOYMENT = "/v1/models/demo/iris/versions/2/deployment"


def record(status: str, least: int = 1, most: int = 1, running: int = 1) -> dict[str, Any]:
    replicas = {"min": least, "max": most, "running": running}
    return {"version_number": 2, "status": status, "deployment": {"replicas": replicas}}


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer().running() as running:
        yield running


def run(server: FakeServer, *args: str) -> Result:
    environment: dict[str, str | None] = {"COLUMNS": "200", "FORETELL_API_KEY": None}
    return CliRunner().invoke(cli, [*args, "--url", server.url, "--key", KEY], env=environment)


@pytest.mark.parametrize(
    ("args", "body", "answer", "printed"),
    [
        (
            ("load", "demo/iris:2"),
            {"state": "started"},
            record("ready"),
            "demo/iris:2: ready, replicas 1 (1 running)",
        ),
        (
            ("load", "demo/iris:2", "--min", "0", "--max", "2", "--idle", "30"),
            {"state": "started", "replicas": {"min": 0, "max": 2, "idle_s": 30.0}},
            record("ready", 0, 2, 0),
            "demo/iris:2: ready, replicas 0..2 (0 running)",
        ),
        (
            ("unload", "demo/iris:2"),
            {"state": "stopped"},
            record("stopped", running=0),
            "demo/iris:2: stopped, replicas 1 (0 running)",
        ),
        (
            ("scale", "demo/iris:2", "--replicas", "3"),
            {"replicas": 3},
            record("ready", 3, 3, 3),
            "demo/iris:2: ready, replicas 3 (3 running)",
        ),
    ],
)
def test_a_deployment_change_sends_its_body_and_prints_the_version(
    server: FakeServer, args: tuple[str, ...], body: Any, answer: Any, printed: str
) -> None:
    server.answers[("POST", DEPLOYMENT)] = (200, answer)

    result = run(server, "models", *args)

    assert result.exit_code == 0, result.output
    (request,) = server.requests
    assert (request.method, request.path, request.body) == ("POST", DEPLOYMENT, body)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert " ".join(result.output.split()) == printed


def test_a_failed_load_prints_the_error(server: FakeServer) -> None:
    failed = record("failed", running=0)
    failed["deployment"]["error"] = "setup exploded"
    server.answers[("POST", DEPLOYMENT)] = (200, failed)

    result = run(server, "models", "load", "demo/iris:2")

    assert " ".join(result.output.split()) == (
        "demo/iris:2: failed, replicas 1 (0 running): setup exploded"
    )


def test_rescan_prints_what_changed(server: FakeServer) -> None:
    changed = {"added": ["demo/iris:3"], "removed": ["demo/iris:1"]}
    server.answers[("POST", "/v1/repository/rescan")] = (200, changed)

    result = run(server, "models", "rescan")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["added demo/iris:3", "removed demo/iris:1"]


def test_a_deployment_change_waits_for_the_version_to_settle() -> None:
    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    with Client("http://foretell.test") as client:
        client._http._transport = httpx.MockTransport(answer)  # no network
        client.change_deployment("demo", "iris", 2, state="started")
        client.rescan()

    assert [t["read"] for t in seen] == [SETTLE_TIMEOUT_S, 90.0]
