"""The native API in-process: a real app (lifespan, worker processes, SQLite file) behind httpx.

`api` is one app per test module, serving only the models the module names in a module-level
`MODELS = ("demo/iris", "fixtures/echo")` (and `SETTINGS = {...}` for any other Settings): a test
of demo/iris does not wait for a transformer to load. Tests of a module share its app and must
leave it as they found it (no prediction left running). A module that names no MODELS gets the
session's app of every demo and fixture model (slow to start: name what you need). Tests are
async and run on anyio's pytest plugin (`pytestmark = pytest.mark.anyio`), on asyncio only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from _app import (
    DEMO,
    FIXTURES,
    WEBHOOK_SETTINGS,
    NativeApi,
    model_repository,
    models_repository,
    serving,
)

from foretell.config import Settings


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Session-scoped so that session- and module-scoped apps can be async fixtures: anyio runs
    them, and every test while they live, on one event loop."""
    return "asyncio"


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """demo/* (the examples) and fixtures/* (models that fail on purpose, sleep, echo)."""
    root = tmp_path_factory.mktemp("models") / "repository"
    return model_repository(root, demo=DEMO, fixtures=FIXTURES)


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, anyio_backend: str) -> NativeApi:
    """The module's app: over its `MODELS` if it names them, else the session's app of every
    model. Ready (nothing deploying) and called as the first admin key."""
    name = "models_api" if hasattr(request.module, "MODELS") else "every_model_api"
    found: NativeApi = request.getfixturevalue(name)
    return found


@pytest.fixture(scope="module")
async def models_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NativeApi]:
    """An app over exactly the module's `MODELS`, with its `SETTINGS`, on a fresh SQLite file."""
    models: tuple[str, ...] = tuple(request.module.MODELS)
    extra: dict[str, Any] = dict(getattr(request.module, "SETTINGS", {}))
    base = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    repo = models_repository(base / "repository", models)
    settings = Settings(repository=repo, data_dir=base / "data", **extra)
    async with serving(settings) as api:
        yield api


@pytest.fixture(scope="session")
async def every_model_api(
    repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NativeApi]:
    """The session's app, every demo and fixture model loaded (or failed), on a fresh SQLite
    file: for modules that name no MODELS."""
    data_dir = tmp_path_factory.mktemp("data")
    settings = Settings(repository=repository, data_dir=data_dir, default_model="demo/sentiment")
    async with serving(settings) as api:
        yield api


@pytest.fixture(scope="session")
async def small_body_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NativeApi]:
    """An app with a 2048-byte body limit and no models (nothing to start)."""
    base = tmp_path_factory.mktemp("small")
    empty = model_repository(base / "repository")
    settings = Settings(repository=empty, data_dir=base / "data", max_body_bytes=2048)
    async with serving(settings) as api:
        yield api


@pytest.fixture
def serve(tmp_path: Path) -> Callable[..., AbstractAsyncContextManager[NativeApi]]:
    """Starts a private app over some model folders: `serve({"owner/name": folder}, ...)`.

    Keyword arguments: `ready` (default True: return once nothing deploys) and any Settings."""

    def start(
        models: dict[str, Path], *, ready: bool = True, **settings: Any
    ) -> AbstractAsyncContextManager[NativeApi]:
        root = tmp_path / "repository"
        root.mkdir(exist_ok=True)
        for ref, folder in models.items():
            (root / ref).parent.mkdir(parents=True, exist_ok=True)
            (root / ref).symlink_to(folder, target_is_directory=True)
        config = Settings(repository=root, data_dir=tmp_path / "data", **settings)
        return serving(config, ready=ready)

    return start


@pytest.fixture(scope="module")
async def hooked(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NativeApi]:
    """An app that sends webhooks to loopback, retrying fast, over echo, sleeps and
    raises-in-predict. Its data dir (with the signing secrets) is `hooked.app.state.settings`."""
    base = tmp_path_factory.mktemp("hooked")
    root = base / "repository" / "fixtures"
    root.mkdir(parents=True)
    for name in ("echo", "sleeps", "raises-in-predict"):
        (root / name).symlink_to(FIXTURES / name, target_is_directory=True)
    settings = Settings(repository=root.parent, data_dir=base / "data", **WEBHOOK_SETTINGS)
    async with serving(settings) as api:
        yield api
