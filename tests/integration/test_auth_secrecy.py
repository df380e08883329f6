"""A key is never written anywhere by the server: not in its log, not in an error message, not
in the database — checked by grepping the log and every database file of a real server after
the key was made, used right and wrong, and revoked."""

from __future__ import annotations

from pathlib import Path

import pytest
from _server import build_repository, running_server, sigterm
from typer.testing import CliRunner

from foretell.cli.main import app as cli

pytestmark = pytest.mark.slow


def test_a_key_appears_in_no_log_no_answer_and_no_database_file(tmp_path: Path) -> None:
    repo = build_repository(tmp_path, demo=False, fixtures=["echo"])
    data_dir = tmp_path / "data"
    answers: list[str] = []
    with running_server(repo, data_dir) as server, server.client() as admin:
        made = CliRunner().invoke(
            cli,
            [
                "keys",
                "create",
                "--owner",
                "fixtures",
                "--scope",
                "read",
                "--data-dir",
                str(data_dir),
            ],
            env={"FORETELL_DATA_DIR": None, "FORETELL_DB": None},
        )
        assert made.exit_code == 0, made.output
        key = made.stdout.strip()
        body = {"model": "fixtures/echo", "input": {"text": "x"}}
        with server.client(headers={}) as anonymous:
            for headers in (
                {"Authorization": f"Bearer {key}"},
                {"X-API-Key": key},
                {"Authorization": f"Basic {key}"},
                {"Authorization": f"Bearer {key} {key}"},
                {"Authorization": key},
            ):
                answers.append(anonymous.get("/v1/models", headers=headers).text)
                answers.append(anonymous.post("/v1/predictions", json=body, headers=headers).text)
            listed = admin.get("/v1/keys").json()["results"]
            (entry,) = [k for k in listed if key.startswith(k["prefix"] + "_")]
            answers.append(admin.delete(f"/v1/keys/{entry['id']}").text)
            answers.append(anonymous.get("/v1/models", headers={"X-API-Key": key}).text)
        admin_key = server.admin_key
        sigterm(server)
        log = server.log()

    assert any('"results"' in a for a in answers), "the key worked before its revocation"
    assert any("was revoked" in a for a in answers)
    secret = key.split("_", 2)[2]
    for where, text in [("answers", "\n".join(answers)), ("server log", log)]:
        assert secret not in text, f"the key is in the {where}"
    assert admin_key.split("_", 2)[2] not in log, "the first admin key is in the log"
    database = [p for p in data_dir.iterdir() if p.name.startswith("foretell.db")]
    assert database, "no database files found"
    for path in database:
        content = path.read_bytes()
        assert secret.encode() not in content, f"the key is in {path.name}"
        assert admin_key.split("_", 2)[2].encode() not in content
