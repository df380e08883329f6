"""Loading order: models whose replicas are threads of the server load before those that spawn
processes, so a light model never waits behind a torch import for a loading slot."""

from pathlib import Path

import pytest

from foretell.manifest import Manifest, ModelVersion, Repository
from foretell.service.deployment import Deployment
from foretell.service.deployments import Deployments

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_thread_replicas_load_first_then_the_rest_in_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = Deployments(Repository(root=Path(".")))
    models = [  # (name, runtime, isolation), in the repository's (alphabetical) order
        ("a-python", "python", "auto"),
        ("b-onnx", "onnx", "auto"),
        ("c-forced-process", "onnx", "process"),
        ("e-python-on-a-thread", "python", "thread"),
    ]
    for name, runtime, isolation in models:
        manifest = Manifest.model_construct(runtime=runtime, isolation=isolation)
        version = ModelVersion("acme", name, 1, Path(name), manifest)
        registry._add(Deployment("acme", name, 1, version))
    started: list[str] = []

    async def start(self: Deployment) -> None:
        started.append(self.name)

    monkeypatch.setattr(Deployment, "start", start)
    registry.start(concurrency=1)
    await registry.started()
    assert started == [
        "b-onnx",
        "e-python-on-a-thread",
        "a-python",
        "c-forced-process",
    ]
