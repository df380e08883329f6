"""Client.stream and AsyncClient.stream: typed events until done, a dropped stream resumed from
the last id it had (nothing repeated), a cut let go of silently, error answers as ApiError."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from foretell.client import ApiError, AsyncClient, Client, StreamCut, StreamEvent

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sse(*events: tuple[str, str, str | None]) -> bytes:
    out = []
    for name, data, event_id in events:
        out.append(
            f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "") + f"data: {data}\n\n"
        )
    return "".join(out).encode()


FIRST = sse(("status", '{"status": "processing"}', "0-0-2"), ("output", "Hel", "3-0-2"))
CUT = sse(("error", '{"reason": "fell behind", "resume": true}', None))
REST = sse(("output", "lo", "5-0-2"), ("done", '{"status": "succeeded"}', "5-0-4"))
STREAM = {"content-type": "text/event-stream"}


class Server:
    """Answers a create's stream, then a resume from what it was sent."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)


def created(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={**STREAM, "X-Prediction-Id": "p1"}, content=body)


def expected() -> list[StreamEvent]:
    return [
        StreamEvent("status", '{"status": "processing"}', "0-0-2"),
        StreamEvent("output", "Hel", "3-0-2"),
        StreamEvent("output", "lo", "5-0-2"),
        StreamEvent("done", '{"status": "succeeded"}', "5-0-4"),
    ]


def check_requests(server: Server) -> None:
    create, resume = server.requests
    assert (create.method, create.url.path) == ("POST", "/v1/predictions")
    assert json.loads(create.content) == {"model": "a/b", "input": {"n": 1}, "stream": True}
    assert (resume.method, resume.url.path) == ("GET", "/v1/predictions/p1/stream")
    assert resume.headers["Last-Event-ID"] == "3-0-2"


@pytest.mark.parametrize("drop", [b"", CUT], ids=["connection ended", "cut by the server"])
def test_a_dropped_stream_resumes_from_its_last_id(drop: bytes) -> None:
    server = Server(created(FIRST + drop), httpx.Response(200, headers=STREAM, content=REST))
    with Client("http://t", transport=httpx.MockTransport(server)) as client:
        events = list(client.stream(model="a/b", input={"n": 1}))

    assert events == expected()
    assert "".join(e.data for e in events if e.event == "output") == "Hello"
    check_requests(server)


async def test_the_async_client_resumes_alike() -> None:
    server = Server(created(FIRST + CUT), httpx.Response(200, headers=STREAM, content=REST))
    async with AsyncClient("http://t", transport=httpx.MockTransport(server)) as client:
        events = [e async for e in client.stream(model="a/b", input={"n": 1})]

    assert events == expected()
    check_requests(server)


def test_an_error_answer_is_an_api_error_with_the_servers_detail() -> None:
    detail = "header Last-Event-ID: 'x' is not a stream position"
    server = Server(httpx.Response(400, json={"detail": detail}))
    client = Client("http://t", transport=httpx.MockTransport(server))
    with client, pytest.raises(ApiError) as refused:
        list(client.stream("p1", last_event_id="x"))

    assert refused.value.status == 400
    assert refused.value.detail == detail
    assert server.requests[0].headers["Last-Event-ID"] == "x"


def test_a_stream_that_keeps_dropping_gives_up_after_its_retries() -> None:
    answers: list[Any] = [httpx.Response(200, headers=STREAM, content=b"") for _ in range(3)]
    server = Server(*answers)
    client = Client("http://t", transport=httpx.MockTransport(server))
    with client, pytest.raises(StreamCut, match="prediction p1 dropped 2 times in a row"):
        list(client.stream("p1", retries=1))

    assert len(server.requests) == 2


def test_a_stream_the_server_keeps_cutting_at_once_gives_up_after_its_retries() -> None:
    # A cut is no event of the prediction's: reconnections that bring nothing else count
    # in a row (a server that is stopping cuts every reader it is given).
    answers: list[Any] = [httpx.Response(200, headers=STREAM, content=CUT) for _ in range(3)]
    server = Server(*answers)
    client = Client("http://t", transport=httpx.MockTransport(server))
    with client, pytest.raises(StreamCut, match="prediction p1 dropped 2 times in a row"):
        list(client.stream("p1", retries=1))

    assert len(server.requests) == 2
