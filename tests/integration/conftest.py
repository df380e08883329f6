"""The native API in-process: a real app (lifespan, worker processes, SQLite file) behind httpx.

Starting every replica of the demo and fixture models takes seconds, so one app serves the whole
session; tests must leave it as they found it (no prediction left running). Tests are async and
run on anyio's pytest plugin (`pytestmark = pytest.mark.anyio`), on asyncio only.
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
    serving,
)

from foretell.config import Settings


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Session-scoped so that the session's app and every test share one event loop."""
    return "asyncio"


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """demo/* (the examples) and fixtures/* (models that fail on purpose, sleep, echo)."""
    root = tmp_path_factory.mktemp("models") / "repository"
    return model_repository(root, demo=DEMO, fixtures=FIXTURES)


@pytest.fixture(scope="session")
async def api(
    repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NativeApi]:
    """The session's app, every model loaded (or failed), on a fresh SQLite file."""
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
