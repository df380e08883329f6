"""The `foretell` command as a user runs it, in a folder of their own, against a real server on
a random port whose data directory is elsewhere: the server's URL and key found (flag, variable,
profile, the server's own data directory), a refused key explained, keys managed over HTTP, and
a prediction longer than the server's wait limit followed to its end (issue 20)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _server import Server, build_repository, running_server

pytestmark = pytest.mark.slow

IRIS = "features=[[5.1,3.5,1.4,0.2]]"


@dataclass
class Machine:
    """One user's machine: where the server registers itself, the config folder, and an empty
    folder the commands run in."""

    runtime: Path
    config: Path
    folder: Path


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    root = tmp_path_factory.mktemp("machine")
    found = Machine(root / "run", root / "config", root / "work")
    for path in (found.runtime, found.config, found.folder):
        path.mkdir()
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cli-target")
    repo = build_repository(root, demo=["iris"], fixtures=["sleeps", "file-info"])
    # A wait limit of 1 s: a 3 s prediction outlasts it, as a 90 s one outlasts 60 s.
    env = {"XDG_RUNTIME_DIR": str(machine.runtime), "FORETELL_MAX_WAIT_S": "1"}
    with running_server(repo, root / "elsewhere" / "data", env=env) as server:
        yield server


def foretell(
    machine: Machine, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`foretell ARGS` in the machine's empty folder, with nothing from this environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FORETELL_", "XDG_"))}
    environment |= {
        "XDG_RUNTIME_DIR": str(machine.runtime),
        "XDG_CONFIG_HOME": str(machine.config),
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "foretell.cli", *args],
        cwd=machine.folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def said(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join(done.stderr.split())


def test_any_port_no_key_file_here_the_servers_own_admin_key_is_used(
    server: Server, machine: Machine
) -> None:
    assert not any(machine.folder.iterdir())
    done = foretell(machine, "predict", "demo/iris", "-i", IRIS, "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] == [0]  # setosa


def test_foretell_url_names_the_server(server: Server, machine: Machine) -> None:
    done = foretell(machine, "models", "list", "--json", env={"FORETELL_URL": server.url})
    assert done.returncode == 0, done.stderr
    assert "demo/iris" in {f"{m['owner']}/{m['name']}" for m in json.loads(done.stdout)["results"]}


def test_a_stale_key_in_this_folder_is_not_the_one_sent(server: Server, machine: Machine) -> None:
    stale = machine.folder / ".foretell"
    stale.mkdir()
    (stale / "admin-key").write_text("ft_00000000_stale\n")
    try:
        done = foretell(machine, "models", "list", "--url", server.url)
    finally:
        (stale / "admin-key").unlink()
        stale.rmdir()
    assert done.returncode == 0, done.stderr


def test_a_refused_key_names_the_url_and_where_the_key_came_from(
    server: Server, machine: Machine, tmp_path: Path
) -> None:
    done = foretell(machine, "models", "list", "--url", server.url, "--key", "ft_00000000_x")
    assert done.returncode == 2
    assert f"the server at {server.url} refused the key from --key (HTTP 401" in said(done)
    assert "pass --key or set FORETELL_API_KEY" in said(done)

    (tmp_path / "admin-key").write_text("ft_00000000_old\n")
    done = foretell(machine, "--data-dir", str(tmp_path), "models", "list", "--url", server.url)
    assert done.returncode == 2
    assert f"refused the key from {tmp_path / 'admin-key'} (HTTP 401" in said(done)


def test_profiles_give_the_url_and_key_and_the_flag_wins(
    server: Server, machine: Machine, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(server.admin_key + "\n")
    config = machine.config / "foretell" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(
        f'[default]\nurl = "{server.url}"\nkey_file = "{key_file}"\n\n'
        f'[profiles.wrong]\nurl = "{server.url}"\nkey = "ft_00000000_wrong"\n\n'
        '[profiles.nowhere]\nurl = "http://127.0.0.1:9"\n'
    )
    try:
        done = foretell(machine, "predict", "demo/iris", "-i", IRIS)
        assert done.returncode == 0, done.stderr

        done = foretell(machine, "--profile", "wrong", "models", "list")
        assert done.returncode == 2
        assert f"refused the key from profile 'wrong' in {config}" in said(done)

        done = foretell(machine, "models", "list", env={"FORETELL_PROFILE": "nowhere"})
        assert done.returncode == 2
        assert "cannot reach http://127.0.0.1:9" in said(done)

        done = foretell(machine, "--profile", "nowhere", "models", "list", "--url", server.url)
        assert done.returncode == 0, done.stderr  # the flag over the profile's url

        done = foretell(machine, "--profile", "missing", "models", "list")
        assert done.returncode == 2
        assert f"profile 'missing' is not in {config}" in said(done)
    finally:
        config.unlink()


def test_keys_over_http_create_list_revoke(server: Server, machine: Machine) -> None:
    made = foretell(machine, "keys", "create", "--owner", "alice", "--url", server.url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ft_")

    listed = foretell(machine, "keys", "list", "--json", "--url", server.url)
    assert listed.returncode == 0, listed.stderr
    (mine,) = [k for k in json.loads(listed.stdout)["results"] if key.startswith(k["prefix"])]
    assert (mine["owner"], mine["scope"]) == ("alice", "predict")

    used = foretell(machine, "predict", "demo/iris", "-i", IRIS, "--url", server.url, "--key", key)
    assert used.returncode == 0, used.stderr

    revoked = foretell(machine, "keys", "revoke", mine["id"], "--url", server.url)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked {mine['id']}" in revoked.stdout
    refused = foretell(machine, "models", "list", "--url", server.url, "--key", key)
    assert refused.returncode == 2
    assert "HTTP 401" in said(refused)
    # Nothing was written in the folder the commands ran in (no local database made).
    assert not any(machine.folder.iterdir())


def test_a_prediction_past_the_servers_wait_limit_is_followed_to_its_output(
    server: Server, machine: Machine
) -> None:
    done = foretell(machine, "predict", "fixtures/sleeps", "-i", "seconds=3", "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 3
    assert ": processing" in done.stderr  # progress shown while it ran, as plain lines here


def test_no_wait_returns_the_id_at_once(server: Server, machine: Machine) -> None:
    done = foretell(
        machine, "predict", "fixtures/sleeps", "-i", "seconds=0", "--url", server.url, "--no-wait"
    )
    assert done.returncode == 0, done.stderr
    prediction_id = done.stdout.strip()
    got = foretell(machine, "predictions", "get", prediction_id, "--url", server.url)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["id"] == prediction_id


def test_a_file_named_with_at_is_uploaded_then_predicted_on(
    server: Server, machine: Machine
) -> None:
    data = bytes(range(256)) * 1000
    (machine.folder / "sample.bin").write_bytes(data)
    try:
        done = foretell(
            machine, "predict", "fixtures/file-info", "-i", "file=@sample.bin", "--url", server.url
        )
    finally:
        (machine.folder / "sample.bin").unlink()
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert (output["size"], output["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert "uploaded sample.bin as " in said(done)


def test_version(machine: Machine) -> None:
    done = foretell(machine, "--version")
    assert done.returncode == 0
    assert done.stdout.startswith("foretell ")
