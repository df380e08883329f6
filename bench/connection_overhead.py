"""What the connection's limits (api.connection) cost per request: uvicorn's own httptools
protocol against foretell's LimitedHttpTools, fed the same keep-alive POSTs (a 90-byte OIP infer
body, one read each, as wrk sends them) over a fake transport and answered by a constant ASGI
app, so that nothing else is timed.

    .venv/bin/python bench/connection_overhead.py [--requests N] [--rounds R]

CPU time (process_time), not wall time, so a busy machine disturbs it less; the two protocols
alternate round by round. Prints each one's best and median microseconds per request and their
difference. 2026-12-07, 2 shared cores, 20,000 requests x 15 rounds, four runs: best 15.15 ->
15.76, 15.61 -> 16.88, 15.17 -> 15.85, 15.03 -> 15.87 us; medians +0.8 to +1.3 us a request
(5-8% of this bare protocol and app; about 1% of a front-only request through the real app,
~90 us of server CPU, and 0.2% of a demo/iris prediction, ~440 us).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from foretell.api.connection import protocol_for
from foretell.config import Settings

BODY = b'{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
REQUEST = (
    b"POST /v2/models/demo/iris/infer HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
    b"Authorization: Bearer ft_abcdefghijklmnopqrstuvwxyz0123456789\r\n"
    b"Content-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


async def constant(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


class Transport:
    """Enough of an asyncio transport for the protocol: counts what it writes."""

    def __init__(self) -> None:
        self.closing = False
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )


async def cpu_us_per_request(protocol: type[HttpToolsProtocol], requests: int) -> float:
    config = Config(constant, log_config=None, access_log=False, lifespan="off")
    config.load()
    connection = protocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    start = time.process_time()
    for _ in range(requests):
        connection.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task: reads its body, sends its answer
        await asyncio.sleep(0)
    elapsed = time.process_time() - start
    assert transport.writes >= 2 * requests - 2, "not every request was answered"
    connection.connection_lost(None)
    return elapsed / requests * 1e6


async def main(requests: int, rounds: int) -> None:
    kinds = {"uvicorn HttpToolsProtocol": HttpToolsProtocol}
    kinds["foretell LimitedHttpTools"] = protocol_for(Settings())
    for protocol in kinds.values():  # warm-up
        await cpu_us_per_request(protocol, requests)
    results: dict[str, list[float]] = {name: [] for name in kinds}
    for n in range(rounds):
        for name in list(kinds) if n % 2 == 0 else list(kinds)[::-1]:
            results[name].append(await cpu_us_per_request(kinds[name], requests))
    for name, times in results.items():
        print(
            f"{name:26s} us/request: best {min(times):6.2f}  median {statistics.median(times):6.2f}"
        )
    before, after = (statistics.median(t) for t in results.values())
    print(f"difference (medians): {after - before:+.2f} us a request, ratio {after / before:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    uvloop.run(main(args.requests, args.rounds))
