"""api.access and api.request_id on both lanes, through the real connection protocol: one JSON
access line a request (key id, never the key), X-Request-Id kept when sane, made otherwise,
echoed on every answer (errors too), and readable by the handler and its log lines."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from uvicorn.server import ServerState

from foretell import tracing
from foretell.api import request_id
from foretell.api.app import front
from foretell.api.auth import Reader
from foretell.api.connection import LimitedHttpTools, protocol_for
from foretell.api.errors import install as install_error_handlers
from foretell.api.hotpath import Call, hot_route
from foretell.api.request_id import RequestIdFilter
from foretell.api.responses import Json
from foretell.config import Settings
from foretell.domain.access import Principal, Scope
from foretell.errors import Unauthenticated

pytestmark = pytest.mark.anyio
LIMIT = 2048
KEY = "ft_secretkey_do_not_log"
handled = logging.getLogger("tests.handled")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Keys:
    """The authenticator: KEY is key_7's, anything else unknown."""

    async def principal(self, key: str) -> Principal:
        if key != KEY:
            raise Unauthenticated("invalid API key")
        return Principal("alice", Scope.ADMIN, "key_7")


class Transport(asyncio.Transport):
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
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.9", 50000)}.get(
            name, default
        )


class Served:
    """A protocol serving the hot route POST /hot (fast lane) and GET /slow (FastAPI), both
    answering the request id their handler reads."""

    def __init__(
        self, *, access_log: bool = True, otel: bool = False, max_connections: int = 1000
    ) -> None:
        router = APIRouter()

        async def hot(call: Call) -> Response:
            handled.info("handling the hot route")
            return Json({"request_id": request_id.request_id()})

        hot_route(router, "POST", "/hot", hot, scope=Scope.READ)

        @router.get("/slow")
        async def slow(caller: Reader) -> Response:
            handled.info("handling the slow route")
            return Json({"request_id": request_id.request_id()})

        app = FastAPI()
        install_error_handlers(app)
        app.include_router(router)
        settings = Settings(
            repository=Path("."),
            max_body_bytes=LIMIT,
            max_head_bytes=1024,
            max_connections=max_connections,
            access_log=access_log,
            otel=otel,
        )
        app.state.settings = settings
        app.state.service = object()
        app.state.authenticator = Keys()
        app.state.anonymous = None
        served = front(app)
        config = uvicorn.Config(served.asgi)
        config.load()
        self.state = ServerState()
        self.protocol: LimitedHttpTools = protocol_for(settings, served.lane)(
            config, self.state, {}, asyncio.get_running_loop()
        )
        self.transport = Transport()
        self.protocol.connection_made(self.transport)

    async def send(self, data: bytes) -> bytes:
        """One request; its answer (the fast lane's one write, or ASGI's head and body)."""
        self.protocol.data_received(data)
        await asyncio.sleep(0)
        while self.state.tasks:
            await asyncio.gather(*self.state.tasks)
        written = b"".join(self.transport.writes)
        self.transport.writes.clear()
        return written


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def header(write: bytes, name: str) -> str | None:
    head = write.partition(b"\r\n\r\n")[0].decode()
    found = [
        line.split(": ", 1)[1]
        for line in head.split("\r\n")[1:]
        if line.lower().startswith(f"{name}: ")
    ]
    assert len(found) <= 1, head
    return found[0] if found else None


def status(write: bytes) -> int:
    return int(write.split(b" ", 2)[1])


def body(write: bytes) -> Any:
    return orjson.loads(write.partition(b"\r\n\r\n")[2])


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "foretell.access"]


LANES = [("POST", "/hot"), ("GET", "/slow")]


@pytest.mark.parametrize(("method", "path"), LANES, ids=["fast lane", "FastAPI"])
async def test_a_request_is_logged_once_with_its_key_id_never_its_key(
    caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.INFO)
    served = Served()
    write = await served.send(
        request(method, path, f"Authorization: Bearer {KEY}", "X-Request-Id: trace-42")
    )

    assert status(write) == 200, write
    (line,) = access_lines(caplog)
    assert line.pop("duration_ms") >= 0
    assert line.pop("time").endswith("+00:00")
    assert line == {
        "method": method,
        "path": path,
        "status": 200,
        "key_id": "key_7",
        "client": "127.0.0.9",
        "request_id": "trace-42",
    }
    assert KEY not in caplog.text


@pytest.mark.parametrize(("method", "path"), LANES, ids=["fast lane", "FastAPI"])
async def test_a_sane_id_is_kept_echoed_and_read_by_the_handler_and_its_logs(
    caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    served = Served()
    sent = "~Ab 0-9 printable ASCII, 128 at most" + "x" * 92
    assert len(sent) == 128
    write = await served.send(
        request(method, path, f"Authorization: Bearer {KEY}", f"X-Request-Id: {sent}")
    )

    assert header(write, "x-request-id") == sent
    assert body(write) == {"request_id": sent}
    (logged,) = [r for r in caplog.records if r.name == "tests.handled"]
    assert logged.request_id == sent  # type: ignore[attr-defined]


@pytest.mark.parametrize(("method", "path"), LANES, ids=["fast lane", "FastAPI"])
@pytest.mark.parametrize(
    "sent",
    ["x" * 129, "tab\there", "caf\u00e9", ""],
    ids=["129 characters", "a control character", "not ASCII", "empty"],
)
async def test_an_insane_or_missing_id_is_replaced_by_one_made_here(
    method: str, path: str, sent: str
) -> None:
    served = Served()
    given = request(method, path, f"Authorization: Bearer {KEY}", f"X-Request-Id: {sent}")
    first = await served.send(given)
    second = await served.send(request(method, path, f"Authorization: Bearer {KEY}"))

    made = [header(first, "x-request-id"), header(second, "x-request-id")]
    assert None not in made
    assert sent not in made
    assert made[0] != made[1]
    assert [body(first)["request_id"], body(second)["request_id"]] == made
    assert all(request_id.sane(m.encode()) for m in made)


@pytest.mark.parametrize(
    ("method", "path", "extra", "expected"),
    [
        ("POST", "/hot", "Authorization: Bearer nope", 401),
        ("GET", "/slow", "Authorization: Bearer nope", 401),
        ("GET", "/nowhere", "Authorization: Bearer nope", 404),
        ("POST", "/hot", "Content-Length: 4096", 413),
    ],
    ids=["401 fast lane", "401 FastAPI", "404", "413 before the body"],
)
async def test_errors_carry_the_id_and_are_logged_without_a_key_id(
    caplog: pytest.LogCaptureFixture, method: str, path: str, extra: str, expected: int
) -> None:
    caplog.set_level(logging.INFO)
    served = Served()
    sent = request(method, path, "X-Request-Id: err-1", extra)
    if extra.startswith("Content-Length"):
        sent = sent.replace(b"Content-Length: 0\r\n", b"")
    write = await served.send(sent)

    assert status(write) == expected, write
    assert header(write, "x-request-id") == "err-1"
    (line,) = access_lines(caplog)
    assert (line["status"], line["key_id"], line["request_id"]) == (expected, None, "err-1")


async def test_with_the_access_log_off_nothing_is_logged_and_ids_are_still_echoed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    served = Served(access_log=False)
    for method, path in LANES:
        write = await served.send(request(method, path, f"Authorization: Bearer {KEY}"))
        assert header(write, "x-request-id") is not None

    assert access_lines(caplog) == []


def test_made_ids_differ_in_a_forked_child() -> None:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first made id
        os.write(write, request_id.begin(None).raw)
        os._exit(0)
    os.close(write)
    child = os.read(read, 200)
    os.waitpid(pid, 0)
    mine = request_id.begin(None).raw
    assert child.split(b"-")[0] != mine.split(b"-")[0]


async def test_a_fast_lane_request_continues_the_callers_trace() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)  # not the process's global provider, which is set once for good
    try:
        served = Served(otel=True)
    finally:
        tracing.use(None)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    write = await served.send(
        request("POST", "/hot", f"Authorization: Bearer {KEY}", f"traceparent: {parent}")
    )

    assert status(write) == 200
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "POST /hot"]
    assert span.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert span.parent is not None
    assert span.parent.span_id == 0x00F067AA0BA902B7
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["foretell.request_id"] == header(write, "x-request-id")
    # The process's global provider untouched: FastAPI's own telemetry stays off everywhere.
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


async def test_a_refusal_by_the_connection_carries_an_id_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    served = Served(max_connections=1)  # its own connection is the one allowed: every request 503
    write = await served.send(request("POST", "/hot", "X-Request-Id: full-1"))

    assert status(write) == 503, write
    assert header(write, "x-request-id") == "full-1"
    (line,) = access_lines(caplog)
    assert (line["status"], line["request_id"]) == (503, "full-1")


async def test_a_head_over_the_cap_is_431_with_an_id_made_for_it() -> None:
    served = Served()
    write = await served.send(request("POST", "/hot", "X-Big: " + "x" * 2000))

    assert status(write) == 431, write
    made = header(write, "x-request-id")
    assert made is not None
    assert request_id.sane(made.encode())
