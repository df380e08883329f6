"""Run the API under uvicorn with rich logging; SIGTERM drains, SIGKILL loses nothing durable,
SIGHUP reads the model repository again."""

from __future__ import annotations

import gc
import logging
import signal
import socket
import sys

import uvicorn
from rich.logging import RichHandler
from starlette.types import ASGIApp

from foretell.api.app import Front, create_app, front
from foretell.api.connection import protocol_for
from foretell.api.request_id import RequestIdFilter
from foretell.api.server import Server
from foretell.cli.workers import serve_workers
from foretell.config import Settings

# The cyclic GC's default first threshold (700 allocations) makes a busy server walk its young
# objects every few requests; a request allocates hundreds. Measured in-process on demo/digits
# at 64 concurrent requests: 295 -> 219 us of CPU per prediction with this and a frozen heap.
_GC_THRESHOLDS = (10_000, 10, 10)


def _freeze_heap() -> None:
    """Move everything alive once the models are loaded (modules, schemas, sessions) out of
    the collector's sight: it would otherwise rescan them on every full collection."""
    gc.collect()
    gc.freeze()


def serve_forever(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT: in this process, or in `settings.workers` API processes
    sharing one socket (cli.workers), each a whole server of its own."""
    if settings.workers > 1:
        _log_to_console()
        serve_workers(settings, settings.workers, serve_on)
        return
    serve_on(settings, None)


def serve_on(settings: Settings, sockets: list[socket.socket] | None) -> None:
    """One API process, on `sockets` that another process bound (None: it binds its own)."""
    # Until the server's own handler is in place (api.server), a SIGHUP would end the process:
    # before then the repository is read whole anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    gc.set_threshold(*_GC_THRESHOLDS)
    _log_to_console()
    app = create_app(settings, on_loaded=_freeze_heap)
    # Not uvicorn.Server: ours starts stopping the predictions at the signal (api.server).
    Server(uvicorn_config(settings, front(app)), app).run(sockets=sockets)


def _log_to_console() -> None:
    console = RichHandler(show_path=False)
    console.addFilter(RequestIdFilter())
    console.setFormatter(_WithRequestId("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[console])
    # The access log: plain JSON lines on stdout, one write each, never through rich's
    # rendering (tens of microseconds a line) nor mixed into its wrapped columns.
    access = logging.getLogger("foretell.access")
    if not access.handlers:
        lines = logging.StreamHandler(sys.stdout)
        lines.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(lines)
        access.propagate = False
    # "N changes detected" for each burst in the model repository: service.watcher says it
    # already, with what it does about it.
    logging.getLogger("watchfiles.main").setLevel(logging.WARNING)


class _WithRequestId(logging.Formatter):
    """A line written while a request was handled ends with the id it was filed under."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return text if request_id is None else f"{text} [request {request_id}]"


def uvicorn_config(settings: Settings, served: Front | ASGIApp) -> uvicorn.Config:
    """How uvicorn serves `served`: httptools under the connection's limits (api.connection),
    with the hot routes answered by the connection itself when given a Front (api.lane)."""
    app, lane = (served.asgi, served.lane) if isinstance(served, Front) else (served, None)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=protocol_for(settings, lane),
        ws="none",  # no WebSocket routes; an upgrade would leave the limits behind
        timeout_keep_alive=settings.keep_alive_s,
        log_config=None,
        access_log=False,
        # Connections get the predictions' grace plus a margin to send their answers.
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )
