"""EventStream sends events as SSE, keeps a quiet stream alive, and lets go of its events at once
when the client leaves or stops taking them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from foretell.api.lane import bound_send_buffer
from foretell.api.sse import (
    CLOSE,
    KEEP_ALIVE,
    SEND_BUFFER,
    STREAM_SEND_BUFFER_BYTES,
    EventStream,
    encode,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Ev:
    event: str
    data: str
    id: str | None


def test_an_event_is_its_name_id_one_data_line_per_line_and_a_blank_line() -> None:
    assert encode(Ev("logs", "one\ntwo\n", "0-8-2")) == (
        b"event: logs\nid: 0-8-2\ndata: one\ndata: two\ndata: \n\n"
    )
    # SSE cannot carry a CR (it ends a line): CRLF and CR arrive as LF, never as a broken field.
    assert encode(Ev("output", "a\r\nb\rc", "5-0-2")) == (
        b"event: output\nid: 5-0-2\ndata: a\ndata: b\ndata: c\n\n"
    )
    assert (
        encode(Ev("error", '{"reason": "x"}', None)) == b'event: error\ndata: {"reason": "x"}\n\n'
    )


class Client:
    """The ASGI side of one connection: what was sent, and a disconnect the test chooses."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.left = asyncio.Event()
        self.got = asyncio.Event()  # set at each message sent
        self.stalled = False  # sends of body chunks never finish (nothing read)

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.stalled and message["type"] == "http.response.body":
            await asyncio.Event().wait()
        self.sent.append(message)
        self.got.set()

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    async def until(self, wanted: bytes) -> None:
        while wanted not in self.body():
            self.got.clear()
            await self.got.wait()


class Source:
    """Events fed by the test; records whether it was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Ev | None] = asyncio.Queue()
        self.closed = False

    async def events(self) -> AsyncIterator[Ev]:
        try:
            while (event := await self.queue.get()) is not None:
                yield event
        finally:
            self.closed = True


async def test_events_go_out_with_the_stream_headers_and_the_body_ends_with_them() -> None:
    source, client = Source(), Client()
    for event in (Ev("status", '{"status": "processing"}', "0-0-2"), Ev("output", "hi", "2-0-2")):
        source.queue.put_nowait(event)
    source.queue.put_nowait(None)

    await EventStream(source.events(), stall_s=5)({"type": "http"}, client.receive, client.send)

    start = client.sent[0]
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"text/event-stream"
    assert headers[b"cache-control"] == b"no-cache"
    assert headers[b"x-accel-buffering"] == b"no"
    assert client.body() == (
        b'event: status\nid: 0-0-2\ndata: {"status": "processing"}\n\n'
        b"event: output\nid: 2-0-2\ndata: hi\n\n"
    )
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert source.closed


async def test_a_quiet_stream_is_kept_alive_by_comments() -> None:
    source, client = Source(), Client()
    stream = EventStream(source.events(), stall_s=5, keep_alive_s=0.01)
    task = asyncio.ensure_future(stream({"type": "http"}, client.receive, client.send))

    await client.until(KEEP_ALIVE + KEEP_ALIVE)  # two, with nothing else in between
    source.queue.put_nowait(Ev("output", "late", "4-0-2"))  # the wait for it was not lost
    await client.until(b"data: late\n\n")
    source.queue.put_nowait(None)
    await task

    assert client.body().startswith(KEEP_ALIVE)
    assert source.closed


async def test_a_client_leaving_ends_the_stream_and_closes_its_events_at_once() -> None:
    source, client = Source(), Client()
    source.queue.put_nowait(Ev("output", "a", "1-0-2"))
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(
        EventStream(source.events(), stall_s=5)({"type": "http"}, client.receive, client.send)
    )
    await client.until(b"data: a\n\n")

    client.left.set()  # while the stream waits for its next event
    await task

    assert source.closed
    assert client.sent[-1]["more_body"] is True  # no end of body for nobody
    assert asyncio.all_tasks() - before == set()  # no task left behind


@pytest.mark.parametrize("closer", ["lane", "scope"])
async def test_a_reader_that_takes_nothing_is_cut_and_its_connection_closed(closer: str) -> None:
    source, client = Source(), Client()
    source.queue.put_nowait(Ev("output", "a", "1-0-2"))
    stream = EventStream(source.events(), stall_s=0.05)
    aborted = asyncio.Event()
    scope: dict[str, Any] = {"type": "http"}
    if closer == "lane":  # api.lane sets it
        stream.abort = aborted.set
    else:  # api.connection puts it in an ASGI request's scope
        scope[CLOSE] = aborted.set
    client.stalled = True

    await stream(scope, client.receive, client.send)

    assert aborted.is_set()
    assert source.closed
    assert client.body() == b""  # nothing went out: neither the event nor the cut


async def test_a_reader_that_stalls_after_a_quiet_spell_is_cut_after_stall_s_not_keep_alive() -> (
    None
):
    source, client = Source(), Client()
    stream = EventStream(source.events(), stall_s=0.05, keep_alive_s=60)
    aborted = asyncio.Event()
    stream.abort = aborted.set
    client.stalled = True
    task = asyncio.ensure_future(stream({"type": "http"}, client.receive, client.send))
    for _ in range(5):  # the stream is quiet: its watch waits for the keep-alive
        await asyncio.sleep(0)
    source.queue.put_nowait(Ev("output", "a", "1-0-2"))  # then a send the reader never takes

    async with asyncio.timeout(30):  # a keep-alive (60 s) away before, stall_s now
        await task

    assert aborted.is_set()
    assert source.closed


async def test_a_render_of_its_own_writes_each_event_and_skips_those_it_answers_none() -> None:
    source, client = Source(), Client()
    for event in (Ev("status", "{}", "0-0-1"), Ev("output", "x", "1-0-1")):
        source.queue.put_nowait(event)
    source.queue.put_nowait(None)

    def render(event: Ev) -> bytes | None:
        return None if event.event == "status" else f"data: [{event.data}]\n\n".encode()

    await EventStream(source.events(), stall_s=5, render=render)(
        {"type": "http"}, client.receive, client.send
    )

    assert client.body() == b"data: [x]\n\n"


@pytest.mark.parametrize("setter", ["lane", "scope"])
async def test_a_stream_bounds_its_connection_s_kernel_send_buffer(setter: str) -> None:
    source, client = Source(), Client()
    source.queue.put_nowait(None)
    stream = EventStream(source.events(), stall_s=5)
    asked: list[int] = []
    scope: dict[str, Any] = {"type": "http"}
    if setter == "lane":
        stream.bound_send_buffer = asked.append
    else:
        scope[SEND_BUFFER] = asked.append

    await stream(scope, client.receive, client.send)

    assert asked == [STREAM_SEND_BUFFER_BYTES]


def test_the_send_buffer_is_set_on_the_connection_s_socket() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        autotuned = ours.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        transport = SimpleNamespace(get_extra_info=lambda name: ours if name == "socket" else None)
        bound_send_buffer(SimpleNamespace(transport=transport), 16 * 1024)  # type: ignore[arg-type]
        bounded = ours.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    assert bounded < autotuned
    assert bounded <= 2 * 16 * 1024  # Linux doubles what it is given, for its bookkeeping
