"""A version with a requirements.txt: its deployment is `building` while its environment is
built (the build's log on it), then `deploying`, then `ready` with replicas running that
environment's python; a failed build settles it `failed` with pip's reason and the log."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from foretell.builds import Builder
from foretell.domain import DeploymentStatus
from foretell.errors import ModelLoadFailed
from foretell.manifest import ModelVersion, load_manifest
from foretell.service.deployment import Deployment
from foretell.workers import ProcessReplica

pytestmark = pytest.mark.anyio

ECHO = Path(__file__).parents[2] / "fixtures" / "models" / "fixtures" / "echo" / "1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeBuilder(Builder):
    """Logs two lines, then answers the server's own python, or fails as pip would."""

    def __init__(self, root: Path, *, fails: bool = False) -> None:
        super().__init__(root)
        self.fails = fails
        self.built: list[str] = []

    async def build(self, version: ModelVersion, log: Callable[[str], None]) -> Path:
        self.built.append(str(version.ref))
        log("Looking in links: /wheels")
        log("ERROR: No matching distribution found for nosuchpkg==9")
        if self.fails:
            reason = "its environment could not be built: No matching distribution found for x"
            raise ModelLoadFailed(str(version.ref), reason, "the whole log")
        return Path(sys.executable)


def deployment(
    tmp_path: Path, builder: Builder | None, statuses: list[DeploymentStatus]
) -> Deployment:
    folder = tmp_path / "echo"
    shutil.copytree(ECHO, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "requirements.txt").write_text("nosuchpkg==9\n")
    version = ModelVersion("acme", "echo", 1, folder, load_manifest(folder))
    d = Deployment("acme", "echo", 1, version, builder=builder)
    d.on_change = lambda: statuses.append(d.status)
    return d


async def test_it_builds_then_deploys_with_the_environments_python(tmp_path: Path) -> None:
    statuses: list[DeploymentStatus] = []
    builder = FakeBuilder(tmp_path / "environments")
    d = deployment(tmp_path, builder, statuses)
    assert d.status is DeploymentStatus.BUILDING  # shown so before its start has begun
    try:
        await d.start()
        assert d.status is DeploymentStatus.READY
        assert builder.built == ["acme/echo:1"]
        seen = list(dict.fromkeys(statuses))
        assert seen == [
            DeploymentStatus.BUILDING,
            DeploymentStatus.DEPLOYING,
            DeploymentStatus.READY,
        ]
        assert d.build_log == (
            "Looking in links: /wheels\nERROR: No matching distribution found for nosuchpkg==9\n"
        )
        assert d.pool is not None
        (replica,) = d.pool.replicas
        assert isinstance(replica, ProcessReplica)
        assert replica._command == (sys.executable, "-m", "foretell.workers")
    finally:
        await d.stop()


async def test_a_failed_build_fails_the_deployment_with_pips_reason(tmp_path: Path) -> None:
    statuses: list[DeploymentStatus] = []
    d = deployment(tmp_path, FakeBuilder(tmp_path / "environments", fails=True), statuses)
    await d.start()
    assert d.status is DeploymentStatus.FAILED
    assert d.settled.is_set()
    assert d.error == "its environment could not be built: No matching distribution found for x"
    assert "No matching distribution found for nosuchpkg==9" in d.build_log
    assert d.pool is None  # no replica was started with the wrong packages
    assert statuses[0] is DeploymentStatus.BUILDING


async def test_without_a_builder_nothing_is_built(tmp_path: Path) -> None:
    statuses: list[DeploymentStatus] = []
    d = deployment(tmp_path, None, statuses)
    assert d.status is DeploymentStatus.DEPLOYING
    try:
        await d.start()
        assert DeploymentStatus.BUILDING not in statuses
        assert d.status is DeploymentStatus.READY
    finally:
        await d.stop()
