"""The Open Inference Protocol v2 over gRPC (KServe's GRPCInferenceService): started beside the
HTTP server when `grpc_port` is set, its RPCs run on the HTTP server's event loop.

Its generated messages (proto/) define `inference.*` in protobuf's default descriptor pool, as
tritonclient.grpc's do: the two cannot be loaded into one process (protobuf refuses the second,
"duplicate symbol"). So nothing here imports them until a server starts, and the tests drive
them from tritonclient in another process, a real `foretell serve`; `contents` and `status`
hold what can be tested beside tritonclient.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI


async def serve(stack: AsyncExitStack, app: FastAPI) -> None:
    """Start the gRPC server if `app`'s settings give a port, stopped by `stack` with the
    same grace as the predictions. Call once the app's service is up."""
    settings = app.state.settings
    if settings.grpc_port is None:
        return
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise RuntimeError(
            f"grpc_port {settings.grpc_port} asks for gRPC, but grpcio is not installed: "
            "pip install 'foretell[grpc]'"
        ) from None
    from foretell.api.oip_grpc import server  # only now: see the module docstring
    from foretell.api.oip_grpc.service import InferenceService

    servicer = InferenceService(
        app.state.service,
        settings,
        app.state.authenticator,
        app.state.anonymous,
        app.version,
    )
    started = server.start(settings, servicer, settings.grpc_port)
    stack.push_async_callback(started.stop, settings.shutdown_grace_s)
