"""Wire the app: store, deployments and service in the lifespan; routers; the error table."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.types import ASGIApp

from foretell.api import docs, health, keys, metrics, oip_grpc, playground
from foretell.api.access import Requests
from foretell.api.cors import cross_origin
from foretell.api.dialects import baseten, gpux, native, oip_v2, slashml, spice
from foretell.api.encoding import ContentDecoding
from foretell.api.errors import install as install_error_handlers
from foretell.api.hotpath import HotPaths, hot_routes
from foretell.api.lane import Lane
from foretell.api.limits import BodyLimit
from foretell.api.openapi import document_errors
from foretell.auth import Authenticator, KeyManager
from foretell.auth.keys import ADMIN_KEY_FILE
from foretell.config import Settings
from foretell.domain.access import ANONYMOUS
from foretell.files import FileService
from foretell.manifest import scan_repository
from foretell.service import PredictionService
from foretell.store import PredictionStore
from foretell.tracing import tracing
from foretell.webhooks import Outbox

log = logging.getLogger("foretell")


def create_app(settings: Settings, on_loaded: Callable[[], None] = lambda: None) -> FastAPI:
    """The ASGI app; models start loading once it is up, in the background, and `on_loaded`
    runs once they all have (ready or failed)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Stopped in reverse: predictions settle, replicas stop, deliveries stop, store last.
        async with AsyncExitStack() as stack:
            store = await PredictionStore.open(settings.database_url, lease_s=settings.lease_s)
            stack.push_async_callback(store.close)
            await _open_doors(app, store, settings)
            repository = scan_repository(settings.repository)
            for problem in [*repository.skipped, *(b.error.message for b in repository.broken)]:
                log.error("model repository: %s", problem)
            outbox = Outbox.for_settings(store.outbox, settings, native.prediction_json)
            # Before recovery, whose records' events must not be read back and sent twice.
            stack.push_async_callback(outbox.close)
            await outbox.start()
            files = FileService.for_settings(store.files, settings)
            stack.push_async_callback(files.close)  # after the service: outputs are stored
            await files.start()
            service = PredictionService.for_repository(repository, store, outbox, settings, files)
            app.state.service = service
            await service.start()
            service.deploy(concurrency=os.cpu_count() or 2)
            stack.push_async_callback(service.undeploy)
            stack.push_async_callback(service.close, grace_s=settings.shutdown_grace_s)
            await oip_grpc.serve(stack, app)  # with grpc_port: stops first, within the grace
            loaded = asyncio.create_task(_after(service.deployed(), on_loaded))
            stack.callback(loaded.cancel)
            yield

    app = FastAPI(
        title="foretell",
        summary="Durable predictions over the models in a folder",
        version="0.1.0",
        lifespan=lifespan,
        # A trailing slash is another path: 404, never a redirect answered before auth, to a
        # Location built from the request's Host header.
        redirect_slashes=False,
        # FastAPI's own OpenTelemetry (on whenever a tracer provider is installed) would trace
        # only its routes, under foretell's span of the same request (foretell.tracing traces
        # both lanes); off, it costs its routes no provider lookups either.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # api.docs serves these: FastAPI's pages load their assets from a CDN, and its
        # document does not know the models.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.anonymous = ANONYMOUS if settings.anonymous_public else None
    install_error_handlers(app)
    document_errors(app)
    docs.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(native.predictions_router)
    # Before the native model routes: /v1/models/{owner}/{name} would take Spice's
    # /v1/models/{name}/predict for a model called "predict".
    app.include_router(spice.router)
    app.include_router(native.webhooks_router)
    app.include_router(native.files_router)
    app.include_router(keys.router)
    app.include_router(oip_v2.router)
    app.include_router(gpux.router)
    app.include_router(slashml.router)
    app.include_router(baseten.router)
    app.include_router(native.push_router)
    app.include_router(native.models_router)
    app.include_router(native.repository_router)
    app.include_router(playground.router)  # `/`: the page and its files
    return app


async def _open_doors(app: FastAPI, store: PredictionStore, settings: Settings) -> None:
    """API keys: who may come in. With none at all yet, make the first admin key."""
    authenticator = None
    if settings.auth:
        authenticator = Authenticator(
            store.keys, rate_per_s=settings.rate_per_s, burst=settings.rate_burst
        )
    app.state.authenticator = authenticator
    if authenticator is not None and settings.anonymous_public:
        log.warning(
            "anonymous access is on: requests without a key may run public models through "
            "the dialects' prediction routes"
        )
    app.state.keys = keys = KeyManager(
        store.keys, on_revoke=authenticator.forget if authenticator else lambda _: None
    )
    if settings.auth and (made := await keys.bootstrap(settings.data_dir)) is not None:
        where = settings.data_dir / ADMIN_KEY_FILE
        log.warning("made the first admin API key; it is in %s, readable only by you", where)
        if sys.stderr.isatty():  # shown once to the person starting it, never to a log file
            print(f"\n  admin API key: {made.key}\n", file=sys.stderr, flush=True)


async def _after(event: Awaitable[None], then: Callable[[], None]) -> None:
    await event
    then()


def asgi(app: FastAPI) -> ASGIApp:
    """What an ASGI server runs: the body limit, then decompression (within the same limit),
    then the hot routes' fast lane, then `app`.

    Outside FastAPI, so the hot routes skip its middleware stack as well as its router."""
    return front(app).asgi


@dataclass(frozen=True)
class Front:
    """What `foretell serve` runs: `lane` answers the hot routes from the connection itself
    (api.lane), `asgi` every other request; both hold bodies in one budget."""

    asgi: ASGIApp
    lane: Lane


def front(app: FastAPI) -> Front:
    """The ASGI stack of `asgi` and the lane that serves the same hot routes without it."""
    settings: Settings = app.state.settings
    hot = HotPaths(app, hot_routes(app))
    decoded = ContentDecoding(hot, limit=settings.max_body_bytes)
    limited = BodyLimit(
        decoded,
        limit=settings.max_body_bytes,
        in_flight=settings.body_bytes_in_flight,
        upload_limit=settings.max_upload_bytes,
        push_limit=settings.max_push_bytes,
    )
    # Outermost: a refusal of the layers below gets its X-Request-Id and its access line too.
    tracer = tracing(settings)  # None unless settings.otel (and the extra is installed)
    logged = Requests(
        cross_origin(limited, settings.cors_origins),
        access_log=settings.access_log,
        tracer=tracer,
    )
    lane = Lane(
        hot,
        limit=settings.max_body_bytes,
        budget=limited.budget,
        access_log=settings.access_log,
        cross_origin=bool(settings.cors_origins),
        tracer=tracer,
    )
    return Front(logged, lane)
