"""BodyLimit holds each request's body bytes against the in-flight cap until it is answered."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from foretell.api.limits import BodyLimit
from foretell.config import Settings
from foretell.errors import BodiesInFlightFull

pytestmark = pytest.mark.anyio

LIMIT = 1000  # one body
CAP = 2500  # all bodies in flight


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class HoldingApp:
    """Reads the whole body, then holds the request open until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.read: asyncio.Queue[bytes] = asyncio.Queue()  # each body it has read
        self.errors: list[Exception] = []
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        chunks = []
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except BodiesInFlightFull as exc:
            self.errors.append(exc)
            raise
        self.read.put_nowait(b"".join(chunks))
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def scope(size: int | None) -> Scope:
    headers = [] if size is None else [(b"content-length", str(size).encode())]
    return {"type": "http", "method": "POST", "path": "/v1/predictions", "headers": headers}


def receiving(*chunks: bytes) -> Receive:
    messages: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


class Answer:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        status: int = self.messages[0]["status"]
        return status

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    def json(self) -> Any:
        return orjson.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


async def started(
    limit: BodyLimit, app: HoldingApp, size: int | None, *chunks: bytes
) -> asyncio.Task[None]:
    """A request whose body `app` has read, and that it now holds open."""
    task = asyncio.create_task(limit(scope(size), receiving(*chunks), Answer()))
    assert await app.read.get() == b"".join(chunks)
    return task


async def test_read_bodies_are_held_and_a_declared_one_that_cannot_fit_is_refused() -> None:
    app = HoldingApp()
    limit = BodyLimit(app, limit=LIMIT, in_flight=CAP)
    first = await started(limit, app, 1000, b"x" * 1000)
    second = await started(limit, app, 1000, b"x" * 1000)
    assert limit.budget.held == 2000

    refused = Answer()
    await limit(scope(600), receiving(b"x" * 600), refused)

    assert refused.status == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "detail": "this request's body of 600 bytes would take the request bodies in flight "
        "past the server's limit of 2500 bytes (2000 bytes held now, max_body_bytes_in_flight); "
        "retry in 1 s"
    }
    assert app.calls == 2  # refused before the app saw it
    app.release.set()
    await asyncio.gather(first, second)
    assert limit.budget.held == 0


async def test_once_the_requests_in_flight_finish_a_new_one_is_accepted() -> None:
    app = HoldingApp()
    limit = BodyLimit(app, limit=LIMIT, in_flight=CAP)
    held = [await started(limit, app, 1000, b"x" * 1000) for _ in range(2)]
    app.release.set()
    await asyncio.gather(*held)

    answer = Answer()
    await limit(scope(1000), receiving(b"x" * 1000), answer)

    assert answer.status == 200
    assert limit.budget.held == 0


async def test_a_body_without_content_length_is_counted_as_it_arrives() -> None:
    app = HoldingApp()
    limit = BodyLimit(app, limit=LIMIT, in_flight=CAP)
    first = await started(limit, app, 1000, b"x" * 1000)
    second = await started(limit, app, 1000, b"x" * 1000)

    third = asyncio.create_task(limit(scope(None), receiving(b"x" * 300, b"x" * 300), Answer()))
    with pytest.raises(BodiesInFlightFull):
        await third

    assert [e.size for e in app.errors] == [600]  # its first 300 bytes fit, the next did not
    assert [e.in_flight for e in app.errors] == [2300]
    app.release.set()
    await asyncio.gather(first, second)
    assert limit.budget.held == 0


async def test_what_a_request_held_is_released_when_it_fails_or_its_client_leaves() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise RuntimeError("bug")

    failing = BodyLimit(broken, limit=LIMIT, in_flight=CAP)
    with pytest.raises(RuntimeError):
        await failing(scope(1000), receiving(b"x" * 1000), Answer())
    assert failing.budget.held == 0

    app = HoldingApp()
    leaving = BodyLimit(app, limit=LIMIT, in_flight=CAP)
    await leaving(scope(1000), receiving(), Answer())  # disconnects before sending a byte
    assert leaving.budget.held == 0

    waiting = asyncio.create_task(leaving(scope(1000), receiving(b"x" * 1000), Answer()))
    await app.read.get()
    waiting.cancel()  # the server gives up on the request mid-answer
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert leaving.budget.held == 0


async def test_a_declared_length_holds_nothing_until_its_bytes_arrive() -> None:
    app = HoldingApp()
    limit = BodyLimit(app, limit=LIMIT, in_flight=CAP)
    first_read, rest = asyncio.Event(), asyncio.Event()
    messages: list[Message] = [
        {"type": "http.request", "body": b"x", "more_body": True},
        {"type": "http.request", "body": b"x" * 999, "more_body": False},
    ]

    async def stalling() -> Message:  # one byte of the 1000 declared, then a stall
        if len(messages) == 1:
            first_read.set()
            await rest.wait()
        return messages.pop(0)

    stalled = asyncio.create_task(limit(scope(1000), stalling, Answer()))
    await first_read.wait()
    assert limit.budget.held == 1
    others = [await started(limit, app, 1000, b"x" * 1000) for _ in range(2)]  # 2001 held

    assert limit.budget.held == 2001
    rest.set()
    with pytest.raises(BodiesInFlightFull):  # its other 999 bytes do not fit now
        await stalled
    app.release.set()
    await asyncio.gather(*others)
    assert limit.budget.held == 0


def test_the_cap_defaults_to_eight_bodies_and_must_hold_one() -> None:
    assert Settings(max_body_bytes=4096).body_bytes_in_flight == 8 * 4096
    assert Settings(max_body_bytes=4096, max_body_bytes_in_flight=5000).body_bytes_in_flight == 5000
    with pytest.raises(ValidationError) as refused:
        Settings(max_body_bytes=4096, max_body_bytes_in_flight=2048)
    assert "max_body_bytes_in_flight (2048) is below max_body_bytes (4096)" in str(refused.value)
