"""Refuse request bodies over the configured size before they are read into memory."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foretell.api.errors import dialect_of_path, error_response
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
            await _refuse(scope, receive, send, PayloadTooLarge(int(declared), self.limit))
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


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: PayloadTooLarge) -> None:
    # Before routing: in the shape of the dialect that owns the path (OIP's /v2), if one does.
    await error_response(exc, dialect_of_path(scope["path"]))(scope, receive, send)
