"""api.lane: the connection answers a hot route itself, in one write, never through the ASGI app,
with the ASGI stack's body limit, bytes in flight and decoding; other routes still go to ASGI."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from uvicorn.server import ServerState

from foretell.api.app import front
from foretell.api.connection import LimitedHttpTools, protocol_for
from foretell.api.hotpath import Call, hot_route
from foretell.api.responses import Json
from foretell.config import Settings
from foretell.domain.access import Scope

pytestmark = pytest.mark.anyio
LIMIT = 2048


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Transport(asyncio.Transport):
    """What the protocol writes, one entry a write; closed or not."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )


class Served:
    """One connection to a protocol whose hot route `/echo` echoes its body, and the handler
    calls and ASGI requests seen."""

    def __init__(self) -> None:
        self.handled: list[bytes] = []
        self.asgi: list[str] = []
        router = APIRouter()

        async def echo(call: Call) -> Response:
            self.handled.append(call.body)
            return Json({"body": call.body.decode(), "owner": call.params.get("owner")})

        hot_route(router, "POST", "/echo/{owner}", echo, scope=Scope.READ)
        app = FastAPI()
        app.include_router(router)
        settings = Settings(repository=Path("."), max_body_bytes=LIMIT)
        app.state.settings = settings
        app.state.service = object()
        app.state.authenticator = None
        app.state.anonymous = None
        self.front = front(app)
        stack = self.front.asgi

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            self.asgi.append(scope["path"])
            await stack(scope, receive, send)

        config = uvicorn.Config(recording)
        config.load()
        self.state = ServerState()
        self.protocol: LimitedHttpTools = protocol_for(settings, self.front.lane)(
            config, self.state, {}, asyncio.get_running_loop()
        )
        self.transport = Transport()
        self.protocol.connection_made(self.transport)

    async def send(self, *reads: bytes) -> list[bytes]:
        """Feed `reads`, let every request started finish, return what was written."""
        for data in reads:
            self.protocol.data_received(data)
            await asyncio.sleep(0)  # the reads of a body arrive while its task waits for them
        while self.state.tasks:
            await asyncio.gather(*self.state.tasks)
        return self.transport.writes


def post(body: bytes, *headers: str, path: str = "/echo/acme") -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def status(write: bytes) -> int:
    return int(write.split(b" ", 2)[1])


def body(write: bytes) -> Any:
    return orjson.loads(write.partition(b"\r\n\r\n")[2])


async def test_a_hot_route_is_answered_in_one_write_without_the_asgi_app() -> None:
    served = Served()
    writes = await served.send(post(b"hello"))

    assert len(writes) == 1
    assert status(writes[0]) == 200
    assert body(writes[0]) == {"body": "hello", "owner": "acme"}
    assert b"\r\ncontent-length: 31\r\n" in writes[0]
    assert served.asgi == []
    assert not served.transport.closed


async def test_other_routes_still_go_to_the_asgi_app() -> None:
    served = Served()
    writes = await served.send(post(b"hello", path="/elsewhere"))

    assert served.asgi == ["/elsewhere"]
    assert status(writes[0]) == 404
    assert served.handled == []


async def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    served = Served()
    writes = await served.send(post(b"one") + post(b"two") + post(b"three"))

    assert [body(w)["body"] for w in writes] == ["one", "two", "three"]
    assert not served.transport.closed


async def test_a_body_in_several_reads_is_read_whole() -> None:
    served = Served()
    whole = post(b"x" * 1000)
    writes = await served.send(whole[:60], whole[60:500], whole[500:])

    assert body(writes[0]) == {"body": "x" * 1000, "owner": "acme"}
    assert served.front.lane.budget.held == 0  # released once answered


async def test_connection_close_is_honoured() -> None:
    served = Served()
    writes = await served.send(post(b"bye", "Connection: close"))

    assert b"\r\nconnection: close\r\n" in writes[0]
    assert served.transport.closed


async def test_a_declared_body_over_the_limit_is_413_before_it_is_read() -> None:
    served = Served()
    head = post(b"", path="/echo/acme").replace(b"Content-Length: 0", b"Content-Length: 4096")
    writes = await served.send(head)

    assert status(writes[0]) == 413
    assert "4096" in body(writes[0])["detail"]
    assert served.handled == []


async def test_a_chunked_body_growing_past_the_limit_is_413() -> None:
    served = Served()
    chunk = b"x" * 1500
    head = b"POST /echo/acme HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    writes = await served.send(head + framed, framed + b"0\r\n\r\n")

    assert status(writes[0]) == 413
    assert served.handled == []
    assert served.front.lane.budget.held == 0


async def test_bodies_are_held_in_the_budget_the_asgi_stack_shares() -> None:
    served = Served()
    budget = served.front.lane.budget
    budget.held = budget.limit - 10  # other requests hold all but 10 bytes
    writes = await served.send(post(b"x" * 100))

    assert status(writes[0]) == 503
    assert "retry-after" in writes[0].decode().lower()
    assert served.handled == []


async def test_gzip_is_decoded_and_other_codings_are_415() -> None:
    served = Served()
    zipped = gzip.compress(b"hello")
    writes = await served.send(
        post(zipped, "Content-Encoding: gzip"), post(b"hello", "Content-Encoding: br")
    )

    assert body(writes[0]) == {"body": "hello", "owner": "acme"}
    assert status(writes[1]) == 415
    assert b"\r\naccept-encoding: gzip, deflate\r\n" in writes[1].lower()


async def test_a_gzip_body_that_decodes_past_the_limit_is_413() -> None:
    served = Served()
    writes = await served.send(post(gzip.compress(b"x" * (LIMIT + 1)), "Content-Encoding: gzip"))

    assert status(writes[0]) == 413
    assert served.handled == []


async def test_a_client_that_leaves_mid_body_runs_nothing() -> None:
    served = Served()
    whole = post(b"x" * 1000)
    served.protocol.data_received(whole[:200])
    await asyncio.sleep(0)
    served.protocol.connection_lost(None)
    await served.send()

    assert served.handled == []
    assert served.transport.writes == []
    assert served.front.lane.budget.held == 0


async def test_expect_100_continue_is_answered_before_the_body_is_read() -> None:
    served = Served()
    whole = post(b"hello", "Expect: 100-continue")
    head, _, rest = whole.partition(b"\r\n\r\n")
    writes = await served.send(head + b"\r\n\r\n", rest)

    assert writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert body(writes[1]) == {"body": "hello", "owner": "acme"}
