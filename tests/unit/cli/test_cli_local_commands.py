"""The CLI's own parsing and the commands that need no server: inputs, key lifetimes,
loopback hosts, `keys` against a fresh database, `webhooks secret` and the listener's check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from standardwebhooks import Webhook
from typer.testing import CliRunner, Result

from foretell.cli.inputs import parse_inputs
from foretell.cli.keys import _parse_expiry, is_loopback
from foretell.cli.main import app as cli
from foretell.cli.webhooks import _verify
from foretell.webhooks import SigningKeys


def invoke(*args: str) -> Result:
    env: dict[str, str | None] = {"COLUMNS": "200", "FORETELL_DATA_DIR": None, "FORETELL_DB": None}
    return CliRunner().invoke(cli, list(args), env=env)


def test_inputs_are_json_where_they_parse_and_text_otherwise() -> None:
    pairs = ["n=3", "x=1.5", "flag=true", "items=[1, 2]", 'obj={"a": null}', "text=hello", "e="]

    assert parse_inputs(pairs) == {
        "n": 3,
        "x": 1.5,
        "flag": True,
        "items": [1, 2],
        "obj": {"a": None},
        "text": "hello",
        "e": "",
    }
    assert parse_inputs(["eq=a=b"]) == {"eq": "a=b"}, "split at the first '=' only"


@pytest.mark.parametrize("pair", ["text", "=x"])
def test_an_input_without_a_key_is_a_bad_parameter_naming_it(pair: str) -> None:
    with pytest.raises(typer.BadParameter, match=f"'{pair}' is not key=value"):
        parse_inputs([pair])


@pytest.mark.parametrize(
    ("value", "lifetime"),
    [
        ("90s", timedelta(seconds=90)),
        ("45m", timedelta(minutes=45)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        (" 7d ", timedelta(days=7)),
        (None, None),
    ],
)
def test_a_key_lifetime_is_a_number_and_a_unit(
    value: str | None, lifetime: timedelta | None
) -> None:
    assert _parse_expiry(value) == lifetime


@pytest.mark.parametrize("value", ["0d", "30", "d", "1.5h", "-1d", "30 days", "1w"])
def test_anything_else_is_not_a_lifetime(value: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not a duration such as 30d"):
        _parse_expiry(value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_what_counts_as_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_without_auth_beyond_loopback_refuses_before_starting(tmp_path: Path) -> None:
    result = invoke("serve", str(tmp_path), "--no-auth", "--host", "192.168.1.10")

    assert result.exit_code == 2
    assert "'192.168.1.10' is not a loopback address" in " ".join(result.output.split())


def test_keys_create_list_and_revoke_on_a_fresh_data_dir(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]

    made = invoke("keys", "create", "--owner", "acme", "--scope", "admin", "--expires", "1d", *data)
    listed = invoke("keys", "list", "--json", *data)
    (entry,) = json.loads(listed.stdout)["results"]
    revoked = invoke("keys", "revoke", entry["id"], *data)
    after = json.loads(invoke("keys", "list", "--json", *data).stdout)["results"]

    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith(entry["prefix"] + "_")
    assert (entry["owner"], entry["scope"], entry["revoked_at"]) == ("acme", "admin", None)
    created = datetime.fromisoformat(entry["created_at"])
    assert datetime.fromisoformat(entry["expires_at"]) - created == timedelta(days=1)
    assert key not in listed.stdout, "a listing never shows the key"
    assert revoked.exit_code == 0, revoked.output
    assert after[0]["revoked_at"] is not None


def test_keys_create_refuses_a_bad_lifetime_before_touching_the_database(tmp_path: Path) -> None:
    result = invoke(
        "keys", "create", "--owner", "acme", "--expires", "soon", "--data-dir", str(tmp_path)
    )

    assert result.exit_code == 2
    assert "'soon' is not a duration" in " ".join(result.output.split())
    assert not (tmp_path / "foretell.db").exists()


def test_webhooks_secret_prints_the_current_one_and_rotation_keeps_the_old_signing(
    tmp_path: Path,
) -> None:
    data = ["--data-dir", str(tmp_path)]

    first = invoke("webhooks", "secret", *data).stdout.strip()
    again = invoke("webhooks", "secret", *data).stdout.strip()
    rotated = invoke("webhooks", "secret", "--rotate", "--grace-hours", "2", *data)
    listed = json.loads(invoke("webhooks", "secret", "--json", *data).stdout)["secrets"]

    assert first.startswith("whsec_")
    assert again == first, "made once, then read"
    new = rotated.stdout.strip()
    assert new.startswith("whsec_")
    assert new != first
    assert "the previous secret also signs until" in rotated.stderr
    assert first in rotated.stderr
    assert [s["secret"] for s in listed] == [new, first]
    assert listed[0]["retires_at"] is None
    assert listed[1]["retires_at"] is not None


def test_the_listener_accepts_what_any_of_its_secrets_signed_and_says_why_not(
    tmp_path: Path,
) -> None:
    keys = SigningKeys.in_dir(tmp_path)
    old = keys.current().value
    keys.rotate(timedelta(hours=1))
    verifiers = [Webhook(s.value) for s in keys.secrets()]
    body = '{"id": "p-1", "status": "succeeded"}'
    signed = keys.sign("msg_1", body, datetime.now(UTC))

    record, problem = _verify(verifiers, body.encode(), signed)
    assert (record, problem) == ({"id": "p-1", "status": "succeeded"}, "")
    record, _ = _verify([Webhook(old)], body.encode(), signed)
    assert record == {"id": "p-1", "status": "succeeded"}, "the retiring secret still signs"

    forged, problem = _verify(verifiers, body.replace("succeeded", "failed").encode(), signed)
    assert forged is None
    assert problem == "No matching signature found"
    unsigned, problem = _verify(verifiers, body.encode(), {})
    assert unsigned is None
    assert problem == "Missing required headers"
    assert _verify([], body.encode(), signed) == (None, "no secret given")


def test_an_at_input_names_a_file_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    assert parse_inputs([f"image=@{tmp_path / 'a.png'}", 'handle="@me"']) == {
        "image": tmp_path / "a.png",
        "handle": "@me",
    }
    with pytest.raises(typer.BadParameter, match="is not a file"):
        parse_inputs([f"image=@{tmp_path / 'missing.png'}"])
