"""Which kind of replica a version gets, and where: the manifest's placement over the server's
default; a model placed on Ray without a cluster fails its start saying what to set; and the
embedded default never imports ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from foretell.config import Settings
from foretell.errors import ModelLoadFailed
from foretell.manifest import Manifest, ModelVersion, Placement, RayOptions
from foretell.workers import LOCAL, ProcessReplica, ServerPlacement, ThreadReplica, new_replica
from foretell.workers.placement import Unplaced, ray_options
from foretell.workers.pool import RAY_HEAD_LOST_ENV

pytestmark = pytest.mark.anyio

ON_RAY = ServerPlacement("127.0.0.2:6379", "ray")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def version(placement: Placement | None = None, isolation: str = "process") -> ModelVersion:
    manifest = Manifest.model_construct(runtime="python", isolation=isolation, placement=placement)
    return ModelVersion("acme", "model", 1, Path("model"), manifest)


def test_the_manifest_decides_over_the_server_default() -> None:
    gpus = RayOptions(num_gpus=1)
    assert ray_options(version(Placement(ray=gpus)), LOCAL) == gpus
    assert ray_options(version(Placement(ray=None)), ON_RAY) is None  # placement: local


def test_the_server_default_places_models_that_say_nothing() -> None:
    assert ray_options(version(), LOCAL) is None
    assert ray_options(version(), ON_RAY) == RayOptions()


def test_settings_give_the_server_placement() -> None:
    settings = Settings(ray_address="127.0.0.2:6379", placement="ray")
    assert ServerPlacement.of(settings) == ON_RAY
    assert ServerPlacement.of(Settings()) == LOCAL


def test_each_kind_of_replica_keeps_the_servers_logs_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RAY_HEAD_LOST_ENV, raising=False)
    server = ServerPlacement.of(Settings(max_prediction_logs_chars=2048))
    assert server.logs_cap == 2048
    on_ray = ServerPlacement("127.0.0.2:6379", "ray", 2048)
    replicas = [
        new_replica(version(isolation="process"), server),
        new_replica(version(isolation="thread"), server),
        new_replica(version(), on_ray),
    ]
    # Sent to the replica's model with its Setup: one input's prints are cut past it there.
    assert [r._logs_cap for r in replicas] == [2048, 2048, 2048]  # type: ignore[union-attr]


def test_local_replicas_follow_isolation() -> None:
    assert isinstance(new_replica(version(isolation="process"), LOCAL), ProcessReplica)
    assert isinstance(new_replica(version(isolation="thread"), LOCAL), ThreadReplica)
    assert isinstance(new_replica(version(Placement(ray=None)), ON_RAY), ProcessReplica)


async def test_placed_on_ray_without_a_cluster_fails_its_start_saying_what_to_set() -> None:
    replica = new_replica(version(Placement(ray=RayOptions())), LOCAL)

    assert isinstance(replica, Unplaced)
    assert not replica.alive
    with pytest.raises(ModelLoadFailed, match=r"--ray-address host:port \(FORETELL_RAY_ADDRESS\)"):
        await replica.start()


def test_placed_on_ray_gets_a_ray_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    from foretell.workers.ray_replica import RayReplica

    monkeypatch.delenv(RAY_HEAD_LOST_ENV, raising=False)

    replica = new_replica(version(), ON_RAY)

    assert isinstance(replica, RayReplica)
    assert (replica.address, replica.options) == ("127.0.0.2:6379", RayOptions())
    # A lost head must not end the server (Ray's default: after 60 s without its GCS).
    assert int(os.environ[RAY_HEAD_LOST_ENV]) >= 365 * 24 * 3600


def test_the_embedded_default_never_imports_ray() -> None:
    """The service, its deployments and a local replica of each kind, in a fresh interpreter:
    `ray` (seconds to import, an extra) stays out of sys.modules."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import foretell.api.app, foretell.service\n"
        "from foretell.manifest import Manifest, ModelVersion\n"
        "from foretell.workers import LOCAL, new_replica\n"
        "m = Manifest.model_construct(runtime='python', isolation='process', placement=None)\n"
        "new_replica(ModelVersion('a', 'b', 1, Path('b'), m), LOCAL)\n"
        "print(sorted(n for n in sys.modules if n == 'ray' or n.startswith('ray.')))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert found.stdout.strip() == "[]"


def test_placed_on_ray_where_ray_cannot_be_imported_fails_naming_the_extra() -> None:
    code = (
        "import sys, asyncio\n"
        "sys.modules['ray'] = None  # as if the cluster extra were not installed\n"
        "from pathlib import Path\n"
        "from foretell.errors import ModelLoadFailed\n"
        "from foretell.manifest import Manifest, ModelVersion\n"
        "from foretell.workers import ServerPlacement, new_replica\n"
        "m = Manifest.model_construct(runtime='python', isolation='process', placement=None)\n"
        "r = new_replica(ModelVersion('a', 'b', 1, Path('b'), m), ServerPlacement('h:1', 'ray'))\n"
        "try:\n"
        "    asyncio.run(r.start())\n"
        "except ModelLoadFailed as exc:\n"
        "    print(exc.reason)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "pip install 'foretell[cluster]'" in found.stdout
