"""uvicorn's Server, with the predictions' stop begun at the signal, beside uvicorn's drain,
and SIGHUP reading the model repository again (Lifecycle.rescan) instead of ending the server.

uvicorn stops in this order (uvicorn.Server.shutdown): it stops listening, waits up to
`timeout_graceful_shutdown` for open connections to finish, cancels what is still running (its
caller gets a plain-text 500), and only then runs the app's lifespan shutdown. The prediction
service's stop (PredictionService.close) is what answers the requests waiting on predictions,
so it ran only after uvicorn had given up on them, and running predictions went on past
`shutdown_grace_s`. Here it starts first: waiting callers get their record or a 503 within the
grace, their connections end, and uvicorn's drain finishes with them."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

import uvicorn
from fastapi import FastAPI

from foretell.config import Settings
from foretell.service import PredictionService

log = logging.getLogger(__name__)


class Server(uvicorn.Server):
    """Serves `app` (whose lifespan made its PredictionService) under `config`."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._stopping: asyncio.Task[None] | None = None
        self._rescans: set[asyncio.Task[object]] = set()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._reread)
        try:
            await super().serve(sockets)
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    def _reread(self) -> None:
        """SIGHUP: versions added to the repository start, versions gone drain and stop."""
        service: PredictionService | None = getattr(self._app.state, "service", None)
        if service is None or self.should_exit:
            log.info("SIGHUP: the model repository is not being served; nothing to read again")
            return
        log.info("SIGHUP: reading the model repository again")
        task = asyncio.ensure_future(service.lifecycle.rescan())
        self._rescans.add(task)
        task.add_done_callback(self._reread_done)

    def _reread_done(self, task: asyncio.Task[object]) -> None:
        self._rescans.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("reading the model repository again at SIGHUP failed: %r", error)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        service: PredictionService | None = getattr(self._app.state, "service", None)
        if service is not None and self._stopping is None:
            settings: Settings = self._app.state.settings
            # The lifespan's shutdown awaits this same stop; a failure is raised there too.
            self._stopping = asyncio.create_task(
                service.close(settings.shutdown_grace_s), name="foretell stop"
            )
            self._stopping.add_done_callback(_seen)
        await super().shutdown(sockets)


def _seen(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("stopping the predictions failed: %r", error)
