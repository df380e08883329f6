"""The request bodies that unfinished requests hold are capped (`max_body_bytes_in_flight`): past
the cap a request is answered 503 with Retry-After, naming the limit, and once the requests in
flight are answered, new ones are read again. 100 bodies of 10 MB at once took a server to
1.4 GB before there was a cap. A body holds the bytes that have arrived, not those its
Content-Length promises: uploads that declare a size and stall lock nobody out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

pytestmark = pytest.mark.anyio

BODY = 2048  # max_body_bytes
CAP = 2 * BODY  # max_body_bytes_in_flight: two whole bodies


def body_of(size: int) -> bytes:
    """A prediction request of exactly `size` bytes (for a model that is not there: 404)."""
    head, tail = b'{"model": "nobody/nothing", "input": {"text": "', b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


class Held:
    """A POST whose body is sent in two parts, the first `sent` bytes (default: all but the
    last byte), the rest only once `go` is set."""

    def __init__(self, http: httpx.AsyncClient, size: int, sent: int | None = None) -> None:
        self.reading = asyncio.Event()  # the server has read the first part
        self.go = asyncio.Event()
        body = body_of(size)
        sent = size - 1 if sent is None else sent

        async def halves() -> AsyncIterator[bytes]:
            yield body[:sent]
            self.reading.set()
            await self.go.wait()
            yield body[sent:]

        headers = {"Content-Length": str(size), "Content-Type": "application/json"}
        self.response = asyncio.create_task(
            http.post("/v1/predictions", content=halves(), headers=headers)
        )

    async def __aenter__(self) -> Held:
        await self.reading.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.go.set()
        await self.response


async def test_past_the_cap_is_503_with_retry_after_until_the_bodies_in_flight_are_answered(
    serve,
) -> None:
    async with serve({}, max_body_bytes=BODY, max_body_bytes_in_flight=CAP) as api:
        async with Held(api.http, BODY) as first, Held(api.http, BODY) as second:
            refused = await api.http.post("/v1/predictions", content=body_of(100))

            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "1"
            assert refused.json() == {
                "detail": "this request's body of 100 bytes would take the request bodies in "
                "flight past the server's limit of 4096 bytes (4094 bytes held now, "
                "max_body_bytes_in_flight); retry in 1 s"
            }

        for held in (first, second):
            assert held.response.result().status_code == 404  # read whole, and answered
        accepted = await api.http.post("/v1/predictions", content=body_of(BODY))
        assert accepted.status_code == 404, accepted.text


async def test_a_body_without_content_length_is_refused_once_it_would_pass_the_cap(
    serve,
) -> None:
    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield body_of(100)

    async with serve({}, max_body_bytes=BODY, max_body_bytes_in_flight=CAP) as api:
        async with Held(api.http, BODY), Held(api.http, BODY):
            refused = await api.http.post("/v1/predictions", content=chunked())
            oip = await api.http.post("/v2/models/nobody/nothing/infer", content=chunked())

        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
        assert "limit of 4096 bytes" in refused.json()["detail"]
        assert oip.status_code == 503, oip.text  # in OIP's own envelope
        assert "limit of 4096 bytes" in oip.json()["error"]
        again = await api.http.post("/v1/predictions", content=chunked())
        assert again.status_code == 404, again.text


async def test_uploads_that_declare_a_size_and_stall_hold_only_what_they_sent(serve) -> None:
    async with serve({}, max_body_bytes=BODY, max_body_bytes_in_flight=CAP) as api:
        stalled = [Held(api.http, BODY, sent=1) for _ in range(8)]  # 8 x 2048 declared, 8 sent
        for held in stalled:  # each is read, or answered (503, when declared sizes were held)
            reading = asyncio.create_task(held.reading.wait())
            await asyncio.wait([reading, held.response], return_when=asyncio.FIRST_COMPLETED)
            reading.cancel()
        assert [h.response.result().status_code for h in stalled if h.response.done()] == []

        others = [await api.http.post("/v1/predictions", content=body_of(BODY)) for _ in range(2)]
        oip = await api.http.post("/v2/models/nobody/nothing/infer", content=body_of(BODY))

        assert [r.status_code for r in others] == [404, 404], others[0].text
        assert oip.status_code == 404, oip.text
        for held in stalled:
            held.go.set()
        for held in stalled:
            assert (await held.response).status_code == 404
