"""`foretell webhooks secret` and `foretell webhooks listen`: the secret a receiver needs, and
a receiver that checks signatures, tried against a real server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from _server import build_repository, free_port, running_server, wait_for
from typer.testing import CliRunner, Result

from foretell.cli.main import app
from foretell.webhooks import SigningKeys


def foretell(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"FORETELL_DATA_DIR": None})


def test_secret_prints_the_servers_secret_alone_on_stdout(tmp_path: Path) -> None:
    first = foretell("webhooks", "secret", "--data-dir", str(tmp_path))
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == SigningKeys.in_dir(tmp_path).current().value
    again = foretell("webhooks", "secret", "--data-dir", str(tmp_path))
    assert again.stdout == first.stdout


def test_rotate_prints_the_new_secret_and_says_the_old_one_still_signs(tmp_path: Path) -> None:
    old = foretell("webhooks", "secret", "--data-dir", str(tmp_path)).stdout.strip()
    rotated = foretell(
        "webhooks", "secret", "--data-dir", str(tmp_path), "--rotate", "--grace-hours", "2"
    )
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    assert new.startswith("whsec_")
    assert new != old
    assert "the previous secret also signs until" in rotated.stderr
    assert old in rotated.stderr
    listed = foretell("webhooks", "secret", "--data-dir", str(tmp_path), "--json")
    assert '"retires_at": null' in listed.stdout
    assert old in listed.stdout
    assert new in listed.stdout


@contextmanager
def listening(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "foretell.cli.main",
            "webhooks",
            "listen",
            "--port",
            str(port),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"},
    )
    try:
        wait_for(lambda: _answers(port), timeout=20, what="the listener")
        yield process, port
    finally:
        process.terminate()
        process.wait(10)


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.TransportError:
        return False
    return True


@pytest.mark.slow
def test_listen_verifies_a_real_servers_events_and_rejects_a_forgery(tmp_path: Path) -> None:
    repo = build_repository(tmp_path, demo=False, fixtures=["echo"])
    data_dir = tmp_path / "data"
    env = {"FORETELL_WEBHOOK_ALLOW_PRIVATE": "true"}
    with running_server(repo, data_dir, env=env) as server, server.client() as client:
        with listening("--data-dir", str(data_dir)) as (listener, port):
            response = client.post(
                "/v1/predictions",
                json={
                    "model": "fixtures/echo",
                    "input": {"text": "hello"},
                    "webhook": f"http://127.0.0.1:{port}/hooks",
                },
                headers={"Prefer": "wait=10"},
            )
            prediction_id = response.json()["id"]

            def delivered() -> bool:
                log = client.get(f"/v1/predictions/{prediction_id}/webhooks").json()
                return log["webhook_status"] == "delivered"

            wait_for(delivered, timeout=20, what="delivery to the listener")
            keys = SigningKeys.in_dir(data_dir)
            body = '{"id": "forged", "status": "succeeded"}'
            headers = keys.sign("msg_forged", body, datetime.now(UTC))
            forged = httpx.post(
                f"http://127.0.0.1:{port}/hooks",
                content=body.replace("succeeded", "failed"),
                headers=headers,
            )
            assert forged.status_code == 401  # answered once printed: nothing to wait for
        output = listener.communicate(timeout=10)[0]
    assert "verified" in output
    assert f"prediction {prediction_id} processing" in output
    assert f"prediction {prediction_id} succeeded" in output
    assert "rejected msg_forged /hooks: No matching signature found" in output
