"""Refuse request bodies over the configured size before they are read into memory."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foretell.errors import PayloadTooLarge


class BodyLimit:
    """ASGI middleware: 413 on a Content-Length over the limit, or a stream that grows past it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _refuse(send, PayloadTooLarge(int(declared), self.limit))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # FastAPI turns any other error raised while reading the body into a bare 400.
                raise HTTPException(413, PayloadTooLarge(seen, self.limit).message)
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, exc: PayloadTooLarge) -> None:
    body = orjson.dumps({"detail": exc.message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
