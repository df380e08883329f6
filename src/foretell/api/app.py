"""Wire the app: store, deployments and service in the lifespan; routers; the error table."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from foretell.api import health, metrics
from foretell.api.dialects import native
from foretell.api.errors import install as install_error_handlers
from foretell.api.hotpath import HotPaths
from foretell.api.limits import BodyLimit
from foretell.config import Settings
from foretell.manifest import scan_repository
from foretell.service import Deployments, PredictionService
from foretell.store import PredictionStore

log = logging.getLogger("foretell")


def create_app(settings: Settings, on_loaded: Callable[[], None] = lambda: None) -> FastAPI:
    """The ASGI app; models start loading once it is up, in the background, and `on_loaded`
    runs once they all have (ready or failed)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await PredictionStore.open(settings.database_url)
        repository = scan_repository(settings.repository)
        for problem in [*repository.skipped, *(b.error.message for b in repository.broken)]:
            log.error("model repository: %s", problem)
        deployments = Deployments(repository)
        service = PredictionService(deployments, store, settings)
        app.state.service = service
        await service.recover()
        deployments.start(concurrency=os.cpu_count() or 2)
        loaded = asyncio.create_task(_after(deployments.started(), on_loaded))
        try:
            yield
        finally:
            loaded.cancel()
            try:
                await service.close(grace_s=settings.shutdown_grace_s)
            finally:
                try:
                    await deployments.stop()
                finally:
                    await store.close()

    app = FastAPI(
        title="foretell",
        summary="Durable predictions over the models in a folder",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(native.predictions_router)
    app.include_router(native.models_router)
    return app


async def _after(event: Awaitable[None], then: Callable[[], None]) -> None:
    await event
    then()


def asgi(app: FastAPI) -> ASGIApp:
    """What the HTTP server runs: the body limit, then the hot routes' fast lane, then `app`.

    Outside FastAPI, so the hot routes skip its middleware stack as well as its router."""
    settings: Settings = app.state.settings
    return BodyLimit(HotPaths(app, native.hot_routes), limit=settings.max_body_bytes)
