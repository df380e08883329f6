"""A real `foretell serve` with models that carry a requirements.txt: one pinning a package the
server lacks is built, served by replicas of its own environment, and sees its own version; one
naming a package no index has ends `failed` with a build log naming it while the others serve.
Offline: pip installs only a wheel written by hand (tests/_wheels.py), never from an index."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from _server import FIXTURE_MODELS, ROOT, Server, running_server, wait_for

from _wheels import offline_pip, write_wheel

pytestmark = pytest.mark.slow

BUILDS = ROOT / "tests" / "fixtures" / "models" / "builds"
PROBE = "foretell-probe-pkg"


def freeze() -> str:
    """The server's environment (this test's interpreter is the server's)."""
    command = [sys.executable, "-m", "pip", "freeze", "--all"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def frozen() -> str:
    assert importlib.util.find_spec("foretell_probe_pkg") is None, "the server must lack it"
    return freeze()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, frozen: str) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("environments")
    wheels = root / "wheels"
    write_wheel(wheels, PROBE, "2.0.1")
    write_wheel(wheels, PROBE, "1.0.0")  # there to be passed over: the pin decides
    repo = root / "repo"
    repo.mkdir()
    (repo / "builds").symlink_to(BUILDS, target_is_directory=True)
    (repo / "fixtures" / "echo").mkdir(parents=True)
    (repo / "fixtures" / "echo" / "1").symlink_to(FIXTURE_MODELS / "echo" / "1")
    env = {k: v for k, v in offline_pip(wheels).items() if k.startswith("PIP_")}
    with running_server(repo, root / "data", env=env) as server:
        yield server


def settled(server: Server, model: str) -> dict[str, Any]:
    """Version 1 of `model` once it is neither building nor deploying."""

    def check() -> dict[str, Any] | None:
        with server.client() as client:
            answer = client.get(f"/v1/models/{model}")
        assert answer.status_code == 200, answer.text
        version: dict[str, Any] = answer.json()["versions"][0]
        return None if version["status"] in ("building", "deploying") else version

    return wait_for(check, timeout=120, what=f"{model} to settle")


def predict(server: Server, model: str, input: dict[str, Any]) -> dict[str, Any]:
    with server.client() as client:
        answer = client.post(
            "/v1/predictions",
            json={"model": model, "input": input},
            headers={"Prefer": "wait=30"},
        )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_pinned_package_the_server_lacks_is_built_and_served(server: Server, frozen: str) -> None:
    version = settled(server, "builds/reports-probe-version")
    assert version["status"] == "ready", version
    assert "Successfully installed foretell-probe-pkg-2.0.1" in version["deployment"]["build_log"]

    done = predict(server, "builds/reports-probe-version:1", {})

    assert done["status"] == "succeeded", done
    assert done["output"] == "2.0.1"
    # The server's own environment is untouched.
    assert importlib.util.find_spec("foretell_probe_pkg") is None
    assert freeze() == frozen
    built = [p for p in (server.data_dir / "environments").iterdir() if p.is_dir()]
    assert len(built) == 1, built


def test_a_package_no_index_has_fails_the_build_naming_it_and_the_others_serve(
    server: Server,
) -> None:
    version = settled(server, "builds/needs-missing-package")

    assert version["status"] == "failed", version
    assert version["deployment"]["error"] == (
        "its environment could not be built: No matching distribution found for "
        "foretell-no-such-pkg==9"
    )
    assert "foretell-no-such-pkg==9" in version["deployment"]["build_log"]
    with server.client() as client:
        refused = client.post(
            "/v1/predictions",
            json={"model": "builds/needs-missing-package:1", "input": {"x": 1}},
            headers={"Prefer": "wait=5"},
        )
    assert "No matching distribution found for foretell-no-such-pkg==9" in refused.text
    echoed = predict(server, "fixtures/echo:1", {"text": "hi"})
    assert echoed["status"] == "succeeded", echoed
    assert echoed["output"] == {"text": "hi", "n": 1}
