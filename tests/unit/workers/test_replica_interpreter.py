"""A version with its own environment (a requirements.txt): its replicas are processes of that
environment's python; `auto` isolation becomes a process; on Ray it fails saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from foretell.errors import ModelLoadFailed
from foretell.manifest import Manifest, ModelVersion
from foretell.workers import LOCAL, ProcessReplica, ServerPlacement, ThreadReplica, new_replica
from foretell.workers.replica import WORKER_COMMAND

pytestmark = pytest.mark.anyio

ON_RAY = ServerPlacement("127.0.0.2:6379", "ray")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def version(folder: Path, *, requirements: bool, runtime: str = "python") -> ModelVersion:
    if requirements:
        (folder / "requirements.txt").write_text("foretell-probe-pkg==2.0.1\n")
    manifest = Manifest.model_construct(runtime=runtime, isolation="auto", placement=None)
    return ModelVersion("acme", "model", 1, folder, manifest)


def test_a_process_replica_runs_the_python_it_is_given(tmp_path: Path) -> None:
    python = tmp_path / "env" / "bin" / "python"
    replica = new_replica(version(tmp_path, requirements=True), LOCAL, python)
    assert isinstance(replica, ProcessReplica)
    assert replica._command == (str(python), "-m", "foretell.workers")


def test_without_one_it_runs_the_servers(tmp_path: Path) -> None:
    replica = new_replica(version(tmp_path, requirements=False), LOCAL)
    assert isinstance(replica, ProcessReplica)
    assert replica._command == WORKER_COMMAND


def test_auto_isolation_is_a_process_for_a_version_with_its_own_environment(
    tmp_path: Path,
) -> None:
    # onnx runs on the server's threads under `auto`, unless it needs its own packages.
    (tmp_path / "plain").mkdir()
    assert isinstance(
        new_replica(version(tmp_path / "plain", requirements=False, runtime="onnx")), ThreadReplica
    )
    own = new_replica(version(tmp_path, requirements=True, runtime="onnx"), LOCAL, tmp_path)
    assert isinstance(own, ProcessReplica)


async def test_on_ray_it_fails_its_start_saying_it_is_not_supported_yet(tmp_path: Path) -> None:
    replica = new_replica(version(tmp_path, requirements=True), ON_RAY, tmp_path / "python")
    with pytest.raises(ModelLoadFailed) as failed:
        await replica.start()
    assert "not supported on Ray yet" in failed.value.reason
    assert "placement: local" in failed.value.reason
