"""`foretell predict | models | predictions` against a fake server: what each sends (route,
body, Prefer, key) and what it prints and exits with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_fakes import FakeServer
from typer.testing import CliRunner, Result

from foretell.auth.keys import ADMIN_KEY_FILE
from foretell.cli.main import app as cli

KEY = "ft_12345678_secret"
SUCCEEDED = {
    "id": "p-1",
    "status": "succeeded",
    "output": {"label": "setosa", "probabilities": [0.98, 0.01, 0.01]},
    "error": None,
}


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer().running() as running:
        yield running


def run(server: FakeServer, *args: str, key: str | None = KEY, **env: str) -> Result:
    keyed = ["--key", key] if key else []
    environment: dict[str, str | None] = {"COLUMNS": "200", "FORETELL_API_KEY": None}
    environment |= env
    return CliRunner().invoke(cli, [*args, "--url", server.url, *keyed], env=environment)


def said(result: Result) -> str:
    return " ".join(result.output.split())


def test_predict_posts_the_inputs_as_json_waits_and_prints_the_output(
    server: FakeServer,
) -> None:
    server.answers[("POST", "/v1/predictions")] = (201, SUCCEEDED)

    result = run(
        server, "predict", "demo/iris", "-i", "features=[[5.1,3.5,1.4,0.2]]", "-i", "note=hi"
    )

    assert result.exit_code == 0, result.output
    (request,) = server.requests
    assert request.body == {
        "model": "demo/iris",
        "input": {"features": [[5.1, 3.5, 1.4, 0.2]], "note": "hi"},
    }
    assert request.headers["prefer"] == "wait=60"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert '"label": "setosa"' in result.output


def test_predict_sends_the_wait_and_webhook_it_is_given(server: FakeServer) -> None:
    server.answers[("POST", "/v1/predictions")] = (201, SUCCEEDED)

    result = run(
        server,
        "predict",
        "fixtures/echo:1",
        "-i",
        "text=x",
        "--wait",
        "5",
        "--webhook",
        "https://example.com/hook",
        "--webhook-event",
        "start",
        "--webhook-event",
        "completed",
    )

    assert result.exit_code == 0, result.output
    (request,) = server.requests
    assert request.headers["prefer"] == "wait=5"
    assert request.body["webhook"] == "https://example.com/hook"
    assert request.body["webhook_events_filter"] == ["start", "completed"]


def test_predict_prints_the_whole_record_with_json(server: FakeServer) -> None:
    server.answers[("POST", "/v1/predictions")] = (201, SUCCEEDED)

    result = run(server, "predict", "demo/iris", "-i", "features=[[1,2,3,4]]", "--json")

    assert result.exit_code == 0, result.output
    assert '"id": "p-1"' in result.output
    assert '"status": "succeeded"' in result.output


def test_a_failed_prediction_prints_its_error_and_exits_1(server: FakeServer) -> None:
    failed = {"id": "p-2", "status": "failed", "error": {"message": "boom: cannot predict"}}
    server.answers[("POST", "/v1/predictions")] = (201, failed)

    result = run(server, "predict", "fixtures/raises-in-predict", "-i", "text=x")

    assert result.exit_code == 1
    assert said(result) == "failed: boom: cannot predict (id p-2)"


def test_a_prediction_still_running_when_the_wait_ends_is_polled_until_it_ends(
    server: FakeServer,
) -> None:
    # It used to exit 0 printing "processing: (id p-3)", the output never seen (issue 20).
    server.answers[("POST", "/v1/predictions")] = (201, {"id": "p-3", "status": "processing"})
    server.answers[("GET", "/v1/predictions/p-3")] = (200, {**SUCCEEDED, "id": "p-3"})

    result = run(server, "predict", "fixtures/sleeps", "-i", "seconds=30", "--wait", "1")

    assert result.exit_code == 0, result.output
    assert '"label": "setosa"' in result.stdout
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/v1/predictions"),
        ("GET", "/v1/predictions/p-3"),
    ]
    assert "p-3: processing" in result.stderr  # not a terminal: a plain line, no spinner


def test_a_prediction_that_fails_while_polled_exits_1_with_its_error(server: FakeServer) -> None:
    server.answers[("POST", "/v1/predictions")] = (201, {"id": "p-4", "status": "pending"})
    failed = {"id": "p-4", "status": "failed", "error": {"message": "boom"}, "output": None}
    server.answers[("GET", "/v1/predictions/p-4")] = (200, failed)

    result = run(server, "predict", "fixtures/sleeps", "-i", "seconds=30")

    assert result.exit_code == 1
    assert "failed: boom (id p-4)" in said(result)


def test_no_wait_prints_the_id_at_once_without_asking_the_server_to_wait(
    server: FakeServer,
) -> None:
    server.answers[("POST", "/v1/predictions")] = (201, {"id": "p-5", "status": "starting"})

    result = run(server, "predict", "fixtures/sleeps", "-i", "seconds=30", "--no-wait")

    assert result.exit_code == 0, result.output
    assert result.stdout == "p-5\n"
    (request,) = server.requests
    assert "prefer" not in request.headers


def test_a_server_allowing_shorter_waits_is_asked_for_its_longest_then_polled(
    server: FakeServer,
) -> None:
    # What api.prefer answers when --wait is past the server's max_wait_s: nothing was made.
    refusal = {"detail": "Prefer: wait=60 is out of range; wait must be ... from 1 to 5"}
    server.answers[("POST", "/v1/predictions")] = [
        (400, refusal),
        (201, {"id": "p-6", "status": "processing"}),
    ]
    server.answers[("GET", "/v1/predictions/p-6")] = (200, {**SUCCEEDED, "id": "p-6"})

    result = run(server, "predict", "demo/iris", "-i", "x=1")

    assert result.exit_code == 0, result.output
    creates = [r for r in server.requests if r.method == "POST"]
    assert [r.headers.get("prefer") for r in creates] == ["wait=60", "wait"]


def test_an_error_answer_is_printed_with_its_status_and_exits_2(server: FakeServer) -> None:
    server.answers[("POST", "/v1/predictions")] = (404, {"detail": "model 'demo/nope' not found"})

    result = run(server, "predict", "demo/nope", "-i", "x=1")

    assert result.exit_code == 2
    assert said(result) == "error: HTTP 404: model 'demo/nope' not found"


def test_a_validation_error_list_is_summarized_by_location(server: FakeServer) -> None:
    detail = [{"loc": ["body", "input", "features"], "msg": "Field required"}]
    server.answers[("POST", "/v1/predictions")] = (422, {"detail": detail})

    result = run(server, "predict", "demo/iris", "-i", "x=1")

    assert result.exit_code == 2
    assert said(result) == "error: HTTP 422: body.input.features: Field required"


def test_no_server_is_an_error_naming_the_url(tmp_path: Path) -> None:
    nowhere = FakeServer(url="http://127.0.0.1:9")  # the discard port: nothing listens

    result = run(nowhere, "models", "list")

    assert result.exit_code == 2
    assert said(result).startswith("error: cannot reach http://127.0.0.1:9")


def test_an_input_that_is_not_key_value_is_a_usage_error(server: FakeServer) -> None:
    result = run(server, "predict", "demo/iris", "-i", "features")

    assert result.exit_code == 2
    assert "'features' is not key=value" in said(result)
    assert server.requests == []


def test_without_a_key_the_local_servers_admin_key_is_used(
    server: FakeServer, tmp_path: Path
) -> None:
    (tmp_path / ADMIN_KEY_FILE).write_text("ft_local_admin\n")
    server.answers[("GET", "/v1/models")] = (200, {"results": []})

    result = run(server, "models", "list", key=None, FORETELL_DATA_DIR=str(tmp_path))

    assert result.exit_code == 0, result.output
    assert server.requests[0].headers["authorization"] == "Bearer ft_local_admin"


def model(name: str, error: str | None = None) -> dict[str, Any]:
    return {
        "owner": "demo",
        "name": name,
        "model_id": f"demo-{name}",
        "versions": [
            {
                "version_number": 1,
                "runtime": "onnx",
                "status": "failed" if error else "ready",
                "description": f"{name} model",
                "deployment": {"error": error},
            }
        ],
    }


def test_models_list_shows_each_version_and_why_one_failed(server: FakeServer) -> None:
    body = {"results": [model("iris"), model("broken", "field 'runtime': no such runtime")]}
    server.answers[("GET", "/v1/models")] = (200, body)

    result = run(server, "models", "list")

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert any("demo/iris" in line and "demo-iris" in line and "ready" in line for line in lines)
    assert any("failed: field 'runtime': no such runtime" in line for line in lines)


def test_predictions_list_sends_its_filters_and_prints_whole_ids(server: FakeServer) -> None:
    prediction_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    row = {
        "id": prediction_id,
        "status": "succeeded",
        "created_at": "2026-12-07T12:00:00Z",
        "model": {"owner": "demo", "name": "iris", "version_number": 2},
    }
    server.answers[("GET", "/v1/predictions")] = (200, {"results": [row], "next": None})

    result = run(
        server,
        "predictions",
        "list",
        "--model",
        "demo/iris",
        "--status",
        "succeeded",
        "--limit",
        "5",
    )

    assert result.exit_code == 0, result.output
    (request,) = server.requests
    assert request.query == {"model": ["demo/iris"], "status": ["succeeded"], "limit": ["5"]}
    assert prediction_id in result.output
    assert "demo/iris:2" in result.output


def test_predictions_get_and_cancel_call_their_routes(server: FakeServer) -> None:
    server.answers[("GET", "/v1/predictions/p-1")] = (200, SUCCEEDED)
    server.answers[("POST", "/v1/predictions/p-1/cancel")] = (
        409,
        {"detail": "prediction 'p-1' is already succeeded"},
    )

    got = run(server, "predictions", "get", "p-1")
    canceled = run(server, "predictions", "cancel", "p-1")

    assert got.exit_code == 0, got.output
    assert '"label": "setosa"' in got.output
    assert canceled.exit_code == 2
    assert said(canceled) == "error: HTTP 409: prediction 'p-1' is already succeeded"


def test_assigning_an_environment_puts_the_version_then_lists_them(server: FakeServer) -> None:
    path = "/v1/models/demo/iris/environments"
    server.answers[("PUT", f"{path}/staging")] = (200, {})
    listed = [
        {"environment": "staging", "version_number": 2, "deployment_id": "d2", "status": "ready"}
    ]
    server.answers[("GET", path)] = (200, {"results": listed})

    result = run(
        server, "models", "environments", "demo/iris", "--assign", "staging", "--version", "2"
    )

    assert result.exit_code == 0, result.output
    put, get = server.requests
    assert (put.method, put.path, put.body) == ("PUT", f"{path}/staging", {"version_number": 2})
    assert (get.method, get.path) == ("GET", path)
    assert "staging" in result.output


def test_assign_without_a_version_is_refused_before_any_request(server: FakeServer) -> None:
    result = run(server, "models", "environments", "demo/iris", "--assign", "staging")

    assert result.exit_code == 2
    assert said(result) == "error: --assign and --version go together"
    assert server.requests == []


def test_a_key_from_this_folder_is_used_only_saying_so(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No server registered its data directory for this port: ./.foretell is a guess, said.
    (tmp_path / ".foretell").mkdir()
    (tmp_path / ".foretell" / ADMIN_KEY_FILE).write_text("ft_this_folder\n")
    monkeypatch.chdir(tmp_path)
    server.answers[("GET", "/v1/models")] = (200, {"results": []})

    result = run(server, "models", "list", key=None, FORETELL_DATA_DIR="")

    assert result.exit_code == 0, result.output
    assert server.requests[0].headers["authorization"] == "Bearer ft_this_folder"
    assert (
        f"using the admin key {tmp_path / '.foretell' / ADMIN_KEY_FILE}, in the current folder"
        in said(result)
    )


def test_a_401_names_the_server_and_the_key_s_source(server: FakeServer) -> None:
    server.answers[("GET", "/v1/models")] = (401, {"detail": "invalid API key"})

    result = run(server, "models", "list", key=None, FORETELL_API_KEY="ft_from_env")

    assert result.exit_code == 2
    assert said(result) == (
        f"error: the server at {server.url} refused the key from FORETELL_API_KEY "
        "(HTTP 401: invalid API key); pass --key or set FORETELL_API_KEY"
    )


def test_keys_go_through_the_api_when_a_url_is_given(server: FakeServer) -> None:
    made = {"id": "k-1", "prefix": "ab12cd34", "owner": "acme", "key": "ft_ab12cd34_s"}
    server.answers[("POST", "/v1/keys")] = (201, made)
    server.answers[("DELETE", "/v1/keys/ab12cd34")] = (200, {**made, "key": None})

    created = run(server, "keys", "create", "--owner", "acme", "--expires", "1h", "--burst", "3")
    revoked = run(server, "keys", "revoke", "ab12cd34")

    assert created.exit_code == 0, created.output
    assert created.stdout == "ft_ab12cd34_s\n"
    assert server.requests[0].body == {
        "owner": "acme",
        "scope": "predict",
        "name": "",
        "expires_in_s": 3600.0,
        "burst": 3,
    }
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert revoked.exit_code == 0, revoked.output
    assert "revoked k-1 (ab12cd34…, owner 'acme')" in said(revoked)


def test_predict_stream_interrupted_says_where_its_prediction_goes_on(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.answers[("POST", "/v1/predictions")] = (201, {**SUCCEEDED, "status": "starting"})

    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt  # Ctrl-C while the events come

    monkeypatch.setattr("foretell.cli.main.print_events", interrupted)
    result = run(server, "predict", "demo/iris", "-i", "features=[[1,2,3,4]]", "--stream")

    assert result.exit_code == 130, result.output
    assert "it goes on: foretell predictions follow p-1" in said(result)
    (request,) = server.requests
    assert "prefer" not in request.headers  # created at once, then followed
