"""Schemathesis over /openapi.json against a real server: no 5xx, and only documented statuses.

Every route, with the admin key, in bounded time: the examples, coverage and fuzzing phases at
a fixed seed (so a failure reproduces), then the stateful phase (links between create and read).
A failure prints schemathesis's report, with a curl line that reproduces each case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _server import ROOT, running_server

pytestmark = pytest.mark.slow

# Enough for every operation's coverage phase and some fuzzing; about 40 s on an idle 2-core box.
MAX_EXAMPLES = 40
SEED = 14
RUN_TIMEOUT_S = 600.0


def schemathesis_command() -> list[str]:
    """The `st` of this interpreter's environment (make test installs it with the dev extra)."""
    st = Path(sys.executable).with_name("st")
    assert st.exists(), f"no schemathesis at {st}: it is a dev dependency"
    return [str(st)]


def small_repository(root: Path) -> Path:
    """Models of every runtime that loads in a second, a public one, and one that fails."""
    repo = root / "repo"
    for ref, source in {
        "demo/iris": ROOT / "examples/models/demo/iris",
        "demo/text-stats": ROOT / "examples/models/demo/text-stats",
        "demo/digits": ROOT / "examples/models/demo/digits",
        "fixtures/echo": ROOT / "tests/fixtures/models/fixtures/echo",
        "fixtures/echo-public": ROOT / "tests/fixtures/models/fixtures/echo-public",
        "fixtures/raises-in-setup": ROOT / "tests/fixtures/models/fixtures/raises-in-setup",
    }.items():
        (repo / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / ref).symlink_to(source, target_is_directory=True)
    return repo


def test_no_route_answers_a_server_error_or_an_undocumented_status(tmp_path: Path) -> None:
    repo = small_repository(tmp_path)
    with running_server(repo, tmp_path / "data") as server:
        command = [
            *schemathesis_command(),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {server.admin_key}",
            "--checks",
            "not_a_server_error,status_code_conformance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "2",
            "--request-timeout",
            "60",
            "--suppress-health-check",
            "filter_too_much,too_slow",
            "--output-truncate",
            "true",
            "--no-color",
        ]
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            cwd=tmp_path,
            check=False,
        )
        report = run.stdout + run.stderr
        assert run.returncode == 0, report[-20_000:]
        assert "No issues found" in report or " passed" in report, report[-5_000:]
        # The server must still serve, and every listing must still render, after the fuzz.
        with server.client() as client:
            assert client.get("/v1/predictions", params={"limit": 100}).status_code == 200
            assert client.get("/health/live").status_code == 200
