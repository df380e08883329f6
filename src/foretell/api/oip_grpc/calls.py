"""Each gRPC call, taken on one of grpc's threads, runs its RPC on the app's event loop and
waits there for the answer; a domain error ends the call with its status from `status`.

Why grpc's threaded server rather than grpc.aio on the loop itself: grpc.aio takes new calls one
at a time (each a completion-queue round trip through its poller thread back to the loop), so
requests reached the batcher one by one and every prediction ran as a batch of one (measured:
15,800 of 15,933 batches of demo/digits held one item at 64 calls in flight; over HTTP the
same load made batches of 17). Calls accepted on threads reach the loop together and batch
(8 on average): 1.8x grpc.aio's req/s on demo/digits side by side, server CPU per call 0.7-1.0
ms against 2.1-2.9 (bench/README.md, grpc_oip.py).
The RPCs themselves, auth and the prediction path still run on the app's loop only."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any

from foretell.api.oip_grpc import status
from foretell.api.oip_grpc.service import InferenceService, Metadata

RPCS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
    "RepositoryIndex",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
)

Rpc = Callable[[Any, Metadata], Coroutine[Any, Any, Any]]
Handler = Callable[[Any, Any], Any]


class Calls:
    """The servicer grpc's server calls (duck-typed: the generated base class only raises):
    one handler per RPC of `service`, run on `loop`."""

    def __init__(self, service: InferenceService, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for name in RPCS:
            setattr(self, name, self._handler(name, getattr(service, name)))

    def _handler(self, name: str, rpc: Rpc) -> Handler:
        def handle(request: Any, context: Any) -> Any:
            metadata = {m.key: m.value for m in context.invocation_metadata() or ()}
            answer: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
                rpc(request, metadata), self._loop
            )
            # A call that ends first (the client left, its deadline passed) stops its wait.
            context.add_callback(answer.cancel)
            try:
                return answer.result()
            except concurrent.futures.CancelledError:
                return None  # nobody is listening any more
            except Exception as exc:
                code, details, trailer = status.of(exc, name)
                if trailer:
                    context.set_trailing_metadata(trailer)
                context.abort(code, details)  # raises, ending the call

        return handle
