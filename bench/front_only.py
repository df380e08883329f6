"""What the HTTP front costs per hot request, in-process: the ASGI stack on uvicorn's protocol
against the lane (api.lane) on the same protocol, both answering a hot route whose handler
returns a constant, fed keep-alive POSTs of an OIP infer body over a fake transport.

    .venv/bin/python bench/front_only.py [--requests N] [--rounds R]

CPU time (process_time), alternating the two round by round; nothing but the front is timed
(no model, no record, auth off). Prints each one's best and median microseconds per request.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import uvloop
from connection_overhead import REQUEST, Transport
from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from uvicorn.config import Config
from uvicorn.server import ServerState

from foretell.api.app import front
from foretell.api.connection import protocol_for
from foretell.api.errors import install
from foretell.api.hotpath import Call, hot_route
from foretell.api.responses import Json
from foretell.config import Settings
from foretell.domain.access import Scope

ANSWER = {"model_name": "demo/iris", "outputs": [{"name": "label", "data": [0]}]}


async def constant(call: Call) -> Response:
    return Json(ANSWER)


def app() -> FastAPI:
    router = APIRouter(prefix="/v2")
    hot_route(router, "POST", "/models/{owner}/{name}/infer", constant, scope=Scope.PREDICT)
    served = FastAPI()
    install(served)
    served.include_router(router)
    served.state.settings = Settings(repository=Path("."))
    served.state.service = object()
    served.state.authenticator = None
    served.state.anonymous = None
    return served


async def cpu_us_per_request(lane: bool, requests: int) -> float:
    settings = Settings(repository=Path("."))
    stack = front(app())
    config = Config(stack.asgi, log_config=None, access_log=False, lifespan="off")
    config.load()  # as uvicorn does: proxy headers wrap the ASGI app
    state = ServerState()
    protocol = protocol_for(settings, stack.lane if lane else None)
    connection = protocol(config=config, server_state=state, app_state={})
    transport = Transport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    start = time.process_time()
    for _ in range(requests):
        connection.data_received(REQUEST)
        for task in list(state.tasks):  # the request's: reads its body, writes its answer
            await task
    elapsed = time.process_time() - start
    assert transport.writes >= requests, "not every request was answered"
    connection.connection_lost(None)
    return elapsed / requests * 1e6


async def main(requests: int, rounds: int) -> None:
    kinds = {"uvicorn + ASGI stack": False, "uvicorn + lane": True}
    for lane in kinds.values():  # warm-up
        await cpu_us_per_request(lane, requests)
    results: dict[str, list[float]] = {name: [] for name in kinds}
    for n in range(rounds):
        for name in list(kinds) if n % 2 == 0 else list(kinds)[::-1]:
            results[name].append(await cpu_us_per_request(kinds[name], requests))
    for name, times in results.items():
        best, median = min(times), statistics.median(times)
        print(f"{name:22s} us/request: best {best:6.2f}  median {median:6.2f}")
    before, after = (statistics.median(t) for t in results.values())
    print(f"lane / ASGI stack (medians): {after / before:.3f}, {after - before:+.2f} us a request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=9)
    args: Any = parser.parse_args()
    uvloop.run(main(args.requests, args.rounds))
