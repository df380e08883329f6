"""`foretell push` against a running `foretell serve`: a pushed folder becomes the next version,
deploys and serves, with no restart; a refused archive writes nothing; a broken model fails
alone, its log saying why."""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _server import FIXTURE_MODELS, ROOT, Server, build_repository, running_server

from _wheels import offline_pip, write_wheel

pytestmark = pytest.mark.slow

ECHO = FIXTURE_MODELS / "echo" / "1"
RAISES_IN_SETUP = FIXTURE_MODELS / "raises-in-setup" / "1"
PROBE_VERSION = ROOT / "tests" / "fixtures" / "models" / "builds" / "reports-probe-version" / "1"
MAX_PUSH_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with no models at all, whose pushes may be up to 256 KiB, and whose pip
    installs only the hand-written wheels of foretell-probe-pkg (tests/_wheels.py)."""
    root = tmp_path_factory.mktemp("push")
    repo = build_repository(root, demo=False, fixtures=())
    write_wheel(root / "wheels", "foretell-probe-pkg", "2.0.1")
    env = {k: v for k, v in offline_pip(root / "wheels").items() if k.startswith("PIP_")}
    env["FORETELL_MAX_PUSH_BYTES"] = str(MAX_PUSH_BYTES)
    with running_server(repo, root / "data", env=env) as server:
        yield server


def repository(server: Server) -> Path:
    return server.data_dir.parent / "repo"


def push(server: Server, folder: Path, model: str, *, key: str | None = None) -> str:
    """`foretell push FOLDER MODEL` as a user runs it, which must succeed: what it printed."""
    done = push_run(server, folder, model, key=key)
    assert done.returncode == 0, done.stdout
    return done.stdout


def push_run(
    server: Server, folder: Path, model: str, *, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`foretell push FOLDER MODEL --url SERVER --key KEY` (default: the admin key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORETELL_")}
    env |= {"COLUMNS": "200", "FORETELL_DATA_DIR": "/nonexistent"}
    command = [sys.executable, "-m", "foretell.cli.main", "push", str(folder), model]
    command += ["--url", server.url, "--key", key or server.admin_key, "--timeout", "300"]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=360, stdin=subprocess.DEVNULL
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join((done.stdout + done.stderr).split())


def make_key(server: Server, owner: str, scope: str) -> str:
    with server.client() as client:
        made = client.post("/v1/keys", json={"owner": owner, "scope": scope, "name": scope})
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def predict(server: Server, model: str, text: str | None) -> dict:
    with server.client(timeout=90) as client:
        answer = client.post(
            "/v1/predictions",
            json={"model": model, "input": {} if text is None else {"text": text}},
            headers={"Prefer": "wait=60"},
        )
    assert answer.status_code in (200, 201), answer.text
    record: dict = answer.json()
    return record


def tgz(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue())


def versions_on_disk(server: Server, model: str) -> list[str]:
    folder = repository(server) / model
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def test_a_pushed_folder_deploys_and_serves_without_a_restart(server: Server) -> None:
    printed = push(server, ECHO, "acme/echo")
    assert "acme/echo version 1" in printed
    assert "status: ready" in printed or "ready: acme/echo:1" in printed
    curl = next(line for line in printed.splitlines() if line.startswith("curl "))
    assert '"model": "acme/echo:1"' in curl
    # The printed curl runs as it is, the key taken from the environment.
    ran = subprocess.run(
        ["bash", "-c", curl],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "FORETELL_API_KEY": server.admin_key},
    )
    assert '"status":"succeeded"' in ran.stdout.replace(" ", ""), ran.stdout + ran.stderr

    record = predict(server, "acme/echo:1", "hello")
    assert record["status"] == "succeeded", record
    assert record["output"] == {"text": "hello", "n": 1}

    second = push(server, ECHO, "acme/echo")
    assert "acme/echo version 2" in second
    assert predict(server, "acme/echo", "again")["model"]["version_number"] == 2
    assert versions_on_disk(server, "acme/echo") == ["1", "2"]


def test_a_predict_key_may_not_push(server: Server) -> None:
    done = push_run(server, ECHO, "acme/echo", key=make_key(server, "acme", "predict"))
    assert done.returncode == 2, output(done)
    assert "scope is 'predict'" in output(done)
    assert "scope 'deploy'" in output(done)
    assert versions_on_disk(server, "acme/echo") in ([], ["1", "2"])


def test_a_deploy_key_pushes_only_its_owners_models(server: Server) -> None:
    key = make_key(server, "bob", "deploy")
    refused = push_run(server, ECHO, "acme/other", key=key)
    assert refused.returncode == 2, output(refused)
    assert "owner 'acme'" in output(refused)
    assert "scope 'admin'" in output(refused)
    assert versions_on_disk(server, "acme/other") == []
    assert "bob/echo version 1" in push(server, ECHO, "bob/echo", key=key)


def test_an_archive_climbing_out_is_422_and_writes_nothing(server: Server) -> None:
    left = server.data_dir / "pushes" / "push-left-by-a-crash.tar"  # removed by the next push
    left.parent.mkdir(exist_ok=True)
    left.write_bytes(b"x")
    os.utime(left, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    body = tgz([("foretell.yaml", ECHO.joinpath("foretell.yaml").read_bytes()), ("../x.py", b"")])
    with server.client() as client:
        answer = client.post(
            "/v1/models/acme/evil/versions",
            content=body,
            headers={"Content-Type": "application/gzip"},
        )
    assert answer.status_code == 422, answer.text
    assert "'../x.py'" in answer.json()["detail"]
    assert not (repository(server) / "acme" / "evil").exists()
    assert not (repository(server) / "acme" / "x.py").exists()
    assert list((server.data_dir / "pushes").iterdir()) == []  # the body's file removed too


def test_a_broken_manifest_is_422_naming_the_file_and_field(server: Server) -> None:
    body = tgz([("m/foretell.yaml", b"runtime: cobol\n")])
    with server.client() as client:
        answer = client.post(
            "/v1/models/acme/cobol/versions",
            content=body,
            headers={"Content-Type": "application/x-tar"},
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("m/foretell.yaml: field 'runtime'")
    assert versions_on_disk(server, "acme/cobol") == []


def test_a_body_that_is_no_archive_type_is_415(server: Server) -> None:
    with server.client() as client:
        answer = client.post("/v1/models/acme/echo/versions", json={"model": "x"})
    assert answer.status_code == 415, answer.text
    assert "application/gzip" in answer.json()["detail"]


def test_an_archive_past_the_limit_is_413_naming_it(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "foretell.yaml").write_bytes(ECHO.joinpath("foretell.yaml").read_bytes())
    (folder / "weights.bin").write_bytes(os.urandom(MAX_PUSH_BYTES + 1))  # gzip cannot shrink
    done = push_run(server, folder, "acme/big")
    assert done.returncode == 2, output(done)
    assert "413" in output(done)
    assert "max_push_bytes" in output(done)

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off as it streams
        for _ in range(MAX_PUSH_BYTES // 65536 + 2):
            yield os.urandom(65536)

    with server.client() as client:
        try:
            answer = client.post(
                "/v1/models/acme/big/versions",
                content=chunks(),
                headers={"Content-Type": "application/gzip"},
            )
        except httpx.TransportError:  # the server may close before the rest is sent
            answer = None
    if answer is not None:
        assert answer.status_code == 413, answer.text
        assert "max_push_bytes" in answer.json()["detail"]
    assert versions_on_disk(server, "acme/big") == []
    assert list((server.data_dir / "pushes").iterdir()) == []


def test_a_broken_model_fails_alone_with_its_log(server: Server) -> None:
    if not versions_on_disk(server, "acme/echo"):
        push(server, ECHO, "acme/echo")
    done = push_run(server, RAISES_IN_SETUP, "acme/broken")
    assert done.returncode == 1, output(done)
    assert "failed" in output(done)
    assert "setup exploded" in output(done)
    with server.client() as client:
        version = client.get("/v1/models/acme/broken/versions/1").json()
    assert version["status"] == "failed"
    assert "setup exploded" in version["deployment"]["logs"]
    assert predict(server, "acme/echo", "still here")["status"] == "succeeded"


def freeze() -> str:
    """The server's environment (this test's interpreter is the server's)."""
    command = [sys.executable, "-m", "pip", "freeze", "--all"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def test_a_pushed_folder_pinning_a_package_the_server_lacks_builds_and_serves(
    server: Server,
) -> None:
    assert importlib.util.find_spec("foretell_probe_pkg") is None, "the server must lack it"
    frozen = freeze()

    printed = push(server, PROBE_VERSION, "acme/probe")

    assert "build| Successfully installed foretell-probe-pkg-2.0.1" in printed
    assert "ready: acme/probe:1" in printed
    done = predict(server, "acme/probe:1", None)
    assert done["status"] == "succeeded", done
    assert done["output"] == "2.0.1"
    assert importlib.util.find_spec("foretell_probe_pkg") is None
    assert freeze() == frozen
