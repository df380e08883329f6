"""`foretell models get | load | unload | scale | rescan` against one real server (_server.py),
in-process through typer's CliRunner, on a repository whose version folders the tests add and
remove (the watcher off, so only `rescan` sees them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import FIXTURE_MODELS, Server, running_server
from typer.testing import CliRunner, Result

from foretell.cli.main import app

pytestmark = pytest.mark.slow

ECHO = FIXTURE_MODELS / "echo" / "1"
BROKEN = FIXTURE_MODELS / "raises-in-setup" / "1"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-models") / "repo"
    (root / "acme" / "echo").mkdir(parents=True)
    (root / "acme" / "echo" / "1").symlink_to(ECHO, target_is_directory=True)
    (root / "acme" / "broken").mkdir()
    (root / "acme" / "broken" / "1").symlink_to(BROKEN, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    env = {"FORETELL_WATCH_REPOSITORY": "false"}
    with running_server(repo, repo.parent / "data", env=env) as server:
        yield server


def on(server: Server, *args: str) -> Result:
    """`foretell ARGS --url <server>`, as the server's first admin key."""
    env = {"FORETELL_URL": None, "FORETELL_API_KEY": server.admin_key, "COLUMNS": "200"}
    return CliRunner().invoke(app, [*args, "--url", server.url], env=env)


def text(result: Result) -> str:
    return " ".join(result.output.split())


def parsed(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def predict_echo(server: Server) -> Result:
    return on(server, "predict", "acme/echo:1", "-i", "text=hi", "--json")


def test_unload_then_load_a_version(server: Server) -> None:
    unloaded = on(server, "models", "unload", "acme/echo:1")
    refused = on(server, "predict", "acme/echo:1", "-i", "text=hi")
    shown = on(server, "models", "get", "acme/echo")
    loaded = on(server, "models", "load", "acme/echo:1", "--replicas", "2")
    record = parsed(on(server, "models", "get", "acme/echo", "--json"))

    assert unloaded.exit_code == 0, unloaded.output
    assert text(unloaded) == "acme/echo:1: stopped, replicas 1 (0 running)"
    assert refused.exit_code == 2, refused.output
    assert "model 'acme/echo:1' is not ready: deployment is stopped" in text(refused)
    assert shown.exit_code == 0, shown.output
    [row] = [line for line in shown.output.splitlines() if line.startswith("│")]
    assert [cell.strip() for cell in row.split("│")[1:4]] == ["1", "stopped", "1 (0 running)"]
    assert loaded.exit_code == 0, loaded.output
    # Ready once one replica is; the other may still be starting.
    assert re.fullmatch(r"acme/echo:1: ready, replicas 2 \([12] running\)", text(loaded))
    [version] = record["versions"]
    assert version["status"] == "ready"
    replicas = version["deployment"]["replicas"]
    assert (replicas["min"], replicas["max"]) == (2, 2)
    assert version["deployment"]["stopped_at"] is not None  # when it was unloaded
    assert version["deployment"]["ready_at"] > version["deployment"]["stopped_at"]
    assert parsed(predict_echo(server))["output"]["text"] == "hi"


def test_get_shows_a_failed_version_s_error_and_the_tail_of_its_logs(server: Server) -> None:
    result = on(server, "models", "get", "acme/broken", "--lines", "3")

    assert result.exit_code == 0, result.output
    said = text(result)
    assert "acme/broken (latest ready: -)" in said
    assert "failed" in said
    assert "version 1 error: RaisesInSetup.setup() raised RuntimeError: setup exploded" in said
    logs = result.output.split("version 1 logs (last lines):")[1]
    assert len(logs.strip().splitlines()) == 3, result.output
    assert "setup exploded" in logs


def test_scale_sets_a_range(server: Server) -> None:
    result = on(server, "models", "scale", "acme/echo:1", "--min", "1", "--max", "3", "--json")

    deployment = parsed(result)["deployment"]
    assert (deployment["replicas"]["min"], deployment["replicas"]["max"]) == (1, 3)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("load", "acme/echo"), "name the version: acme/echo:1, acme/echo:2, …"),
        (("scale", "acme/echo:1"), "give --replicas N, or --min/--max/--idle"),
        (
            ("load", "acme/echo:1", "--replicas", "2", "--max", "3"),
            "give --replicas or --min/--max/--idle, not both",
        ),
        (("unload", "acme/nope:1"), "model 'acme/nope' not found"),
        (
            ("scale", "acme/echo:1", "--min", "3", "--max", "2"),
            "replicas: min (3) is above max (2): min must be at most max",
        ),
    ],
)
def test_mistakes_are_named(server: Server, args: tuple[str, ...], said: str) -> None:
    result = on(server, "models", *args)

    assert result.exit_code == 2, result.output
    assert said in text(result)


def test_rescan_picks_up_a_version_added_and_one_removed(server: Server, repo: Path) -> None:
    second = repo / "acme" / "echo" / "2"
    second.symlink_to(ECHO, target_is_directory=True)
    added = on(server, "models", "rescan")
    again = on(server, "models", "rescan")
    shown = parsed(on(server, "models", "get", "acme/echo", "--json"))
    second.unlink()
    removed = on(server, "models", "rescan", "--json")
    after = parsed(on(server, "models", "get", "acme/echo", "--json"))

    assert added.exit_code == 0, added.output
    assert text(added) == "added acme/echo:2"
    assert text(again) == "no change"
    assert [v["version_number"] for v in shown["versions"]] == [2, 1]
    assert parsed(removed) == {"added": [], "removed": ["acme/echo:2"]}
    assert [v["version_number"] for v in after["versions"]] == [1]
