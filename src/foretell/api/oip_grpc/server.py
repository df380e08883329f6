"""The gRPC server: grpc.aio on the HTTP server's event loop, serving InferenceService on
`grpc_port`, with the HTTP server's body limit as its largest message."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from foretell.api.oip_grpc.proto.grpc_predict_v2_pb2_grpc import (
    add_GRPCInferenceServiceServicer_to_server,
)
from foretell.api.oip_grpc.service import InferenceService
from foretell.config import Settings

log = logging.getLogger(__name__)


async def start(settings: Settings, servicer: InferenceService, port: int) -> Any:
    """A started grpc.aio server listening on settings.host:`port`; OSError where it cannot."""
    server = grpc.aio.server(
        options=[
            # Past it a call ends RESOURCE_EXHAUSTED, "Received message larger than max (N vs. M)".
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            # gRPC shares a port with any other process by default; only foretell's own API
            # processes (serve --workers N) may, so that a second server fails to start
            # rather than silently take half of another's calls.
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        ]
    )
    add_GRPCInferenceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    address = f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # grpcio >= 1.60 raises; older ones returned 0
        bound = 0
    if not bound:
        raise OSError(
            f"cannot serve gRPC on {address} (grpc_port, --grpc-port, FORETELL_GRPC_PORT): the "
            "port is in use or not allowed"
        )
    await server.start()
    log.info("OIP v2 over gRPC on %s:%d", host, bound)
    return server
