"""The `foretell` commands a user types, run in-process (typer's CliRunner) against one real
server process (see _server.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import Server, build_repository, running_server
from typer.testing import CliRunner, Result

from foretell.cli.main import app

pytestmark = pytest.mark.slow

IRIS_FEATURES = "features=[[5.1,3.5,1.4,0.2]]"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cli")
    repo = build_repository(root, demo=["iris", "text-stats"], fixtures=["echo"])
    with running_server(repo, root / "data") as server:
        yield server


def foretell(*args: str, key: str | None = None) -> Result:
    env = {
        "FORETELL_URL": None,
        "FORETELL_API_KEY": key,
        "FORETELL_DATA_DIR": "/nonexistent",
        "COLUMNS": "200",  # tables wide enough that no model name wraps
    }
    return CliRunner().invoke(app, list(args), env=env)


def on(server: Server, *args: str) -> Result:
    """`foretell ARGS --url <server>`, as the server's first admin key."""
    return foretell(*args, "--url", server.url, key=server.admin_key)


def text(result: Result) -> str:
    """Everything printed, with rich's line wrapping (80 columns here) undone."""
    return " ".join(result.output.split())


def parsed(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def predict_iris(server: Server) -> dict[str, Any]:
    record: dict[str, Any] = parsed(
        on(server, "predict", "demo/iris", "-i", IRIS_FEATURES, "--json")
    )
    return record


def test_help_lists_the_commands() -> None:
    result = foretell("--help")
    assert result.exit_code == 0, result.output
    for command in ("serve", "predict", "models", "predictions"):
        assert command in result.output


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "foretell"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "predictions" in done.stdout


def test_predict_prints_the_output(server: Server) -> None:
    result = on(server, "predict", "demo/iris", "-i", IRIS_FEATURES)
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert set(output) == {"label", "probabilities"}
    assert output["label"] == [0]  # setosa
    assert len(output["probabilities"][0]) == 3


def test_predict_json_prints_the_whole_record(server: Server) -> None:
    record = predict_iris(server)
    assert record["status"] == "succeeded"
    assert record["model"] == {"owner": "demo", "name": "iris", "version_number": 2}
    assert record["input"] == {"features": [[5.1, 3.5, 1.4, 0.2]]}
    assert record["output"]["label"] == [0]
    assert record["error"] is None
    assert record["urls"]["get"] == f"/v1/predictions/{record['id']}"


def test_predict_a_named_version(server: Server) -> None:
    result = on(server, "predict", "demo/iris:1", "-i", IRIS_FEATURES, "--json")
    assert parsed(result)["model"]["version_number"] == 1


def test_predict_keeps_a_value_that_is_not_json_as_text(server: Server) -> None:
    result = on(server, "predict", "demo/text-stats", "-i", "text=hello", "-i", "top_k=2", "--json")
    record = parsed(result)
    assert record["status"] == "succeeded", record
    assert record["input"] == {"text": "hello", "top_k": 2}
    assert record["output"]["words"] == 1
    assert record["output"]["characters"] == 5


def test_predict_with_bad_input_says_why_and_fails(server: Server) -> None:
    result = on(server, "predict", "demo/iris", "-i", "features=oops")
    assert result.exit_code == 1, result.output
    said = text(result)
    assert said.startswith("failed: invalid input:"), said
    assert "features" in said
    assert "valid list" in said


def test_predict_with_an_input_that_is_not_key_value_is_a_usage_error(server: Server) -> None:
    result = on(server, "predict", "demo/iris", "-i", "features")
    assert result.exit_code == 2, result.output
    assert "'features' is not key=value" in text(result)


def test_predict_an_unknown_model(server: Server) -> None:
    result = on(server, "predict", "demo/nope", "-i", "x=1")
    assert result.exit_code == 2, result.output
    assert "model 'demo/nope' not found" in text(result)


def test_models_list(server: Server) -> None:
    result = on(server, "models", "list")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "demo/iris" in line]
    versions = sorted(line.split("│")[3].strip() for line in rows)
    assert versions == ["1", "2"], result.output
    assert all(line.split("│")[2].strip() == "demo-iris" for line in rows), rows
    assert all("onnx" in line and "ready" in line for line in rows), rows
    assert "fixtures/echo" in result.output


def test_models_list_json(server: Server) -> None:
    body = parsed(on(server, "models", "list", "--json"))
    models = {f"{m['owner']}/{m['name']}": m for m in body["results"]}
    assert [v["version_number"] for v in models["demo/iris"]["versions"]] == [2, 1]
    assert models["demo/iris"]["latest_version"] == 2


def test_predictions_list_and_get(server: Server) -> None:
    record = predict_iris(server)

    listed = parsed(on(server, "predictions", "list", "--model", "demo/iris", "--json"))
    assert record["id"] in [p["id"] for p in listed["results"]]
    assert {p["model"]["name"] for p in listed["results"]} == {"iris"}

    table = on(server, "predictions", "list", "--limit", "1")
    assert table.exit_code == 0, table.output
    assert "demo/iris:2" in table.output
    assert "succeeded" in table.output
    assert record["id"][:8] in table.output  # at 80 columns the id column is cut short

    got = parsed(on(server, "predictions", "get", record["id"]))
    assert got["id"] == record["id"]
    assert got["status"] == "succeeded"
    assert got["output"] == record["output"]


def test_predictions_get_an_unknown_id(server: Server) -> None:
    result = on(server, "predictions", "get", "no-such-id")
    assert result.exit_code == 2, result.output
    assert "prediction 'no-such-id' not found" in text(result)


def test_cancel_a_finished_prediction_is_refused(server: Server) -> None:
    record = predict_iris(server)
    result = on(server, "predictions", "cancel", record["id"])
    assert result.exit_code == 2, result.output
    said = text(result)
    assert "HTTP 409" in said
    assert f"prediction '{record['id']}' is already succeeded" in said
    assert parsed(on(server, "predictions", "get", record["id"]))["status"] == "succeeded"


def test_an_unreachable_server_is_a_clear_error() -> None:
    result = foretell("predictions", "list", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2, (result.exception, result.output)
    said = text(result)
    assert said.startswith("error: cannot reach http://127.0.0.1:9"), said
    assert "Traceback" not in said


def test_predict_with_a_webhook_puts_it_on_the_record(server: Server) -> None:
    result = on(
        server,
        "predict",
        "demo/iris",
        "-i",
        IRIS_FEATURES,
        "--webhook",
        "https://hooks.example.com/in",
        "--webhook-event",
        "completed",
        "--json",
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["webhook"] == {"url": "https://hooks.example.com/in", "events": ["completed"]}


def test_predict_with_an_unsafe_webhook_says_why_and_fails(server: Server) -> None:
    result = on(
        server, "predict", "demo/iris", "-i", IRIS_FEATURES, "--webhook", "http://169.254.169.254/"
    )
    assert result.exit_code != 0
    assert "link-local or cloud metadata address" in result.output
