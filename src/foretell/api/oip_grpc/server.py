"""The gRPC server: grpc's threaded server accepting calls on `grpc_port`, each run on the HTTP
server's event loop (see `calls`), with the HTTP server's body limit as its largest message."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import grpc

from foretell.api.oip_grpc.calls import Calls
from foretell.api.oip_grpc.proto.grpc_predict_v2_pb2_grpc import (
    add_GRPCInferenceServiceServicer_to_server,
)
from foretell.api.oip_grpc.service import InferenceService
from foretell.config import Settings

log = logging.getLogger(__name__)

# Calls in progress at once; more wait in grpc's queue. Each thread only waits for the loop.
THREADS = 64


class Running:
    """A started server; `stop` lets calls in progress finish for up to `grace_s`."""

    def __init__(self, server: grpc.Server, pool: ThreadPoolExecutor) -> None:
        self._server = server
        self._pool = pool

    async def stop(self, grace_s: float) -> None:
        stopped = self._server.stop(grace_s)
        # The calls still waiting are answered by the loop meanwhile (PredictionService.close).
        await asyncio.to_thread(stopped.wait)
        self._pool.shutdown(wait=False)


def start(settings: Settings, service: InferenceService, port: int) -> Running:
    """A started server on settings.host:`port`; OSError where it cannot listen."""
    pool = ThreadPoolExecutor(THREADS, thread_name_prefix="foretell-grpc")
    server = grpc.server(
        pool,
        options=[
            # Past it a call ends RESOURCE_EXHAUSTED, "Received message larger than max (N vs. M)".
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            # gRPC shares a port with any other process by default; only foretell's own API
            # processes (serve --workers N) may, so that a second server fails to start
            # rather than silently take half of another's calls.
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        ],
    )
    add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        Calls(service, asyncio.get_running_loop()), server
    )
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    address = f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # grpcio >= 1.60 raises; older ones returned 0
        bound = 0
    if not bound:
        pool.shutdown(wait=False)
        raise OSError(
            f"cannot serve gRPC on {address} (grpc_port, --grpc-port, FORETELL_GRPC_PORT): the "
            "port is in use or not allowed"
        )
    server.start()
    log.info("OIP v2 over gRPC on %s:%d", host, bound)
    return Running(server, pool)
