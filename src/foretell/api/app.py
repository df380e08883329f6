"""Wire the app: store, deployments and service in the lifespan; routers; the error table."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from foretell.api import health, metrics
from foretell.api.dialects import native
from foretell.api.errors import install as install_error_handlers
from foretell.api.limits import BodyLimit
from foretell.config import Settings
from foretell.manifest import scan_repository
from foretell.service import Deployments, PredictionService
from foretell.store import PredictionStore

log = logging.getLogger("foretell")


def create_app(settings: Settings) -> FastAPI:
    """The ASGI app; models start loading once it is up, in the background."""

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
        try:
            yield
        finally:
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
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(native.predictions_router)
    app.include_router(native.models_router)
    return app
