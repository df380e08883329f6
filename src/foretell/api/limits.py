"""Refuse request bodies over the configured size before they are read into memory, and any
body that would take the bytes held by unfinished requests past the server's cap.

A body is held for what has arrived, not for what its Content-Length promises: eight uploads
that each declared 10 MB and then sent one byte used to hold the whole cap, and every other
request got 503 for as long as they stalled. (A body that stalls is cut off by the connection's
`body_timeout_s`, api.connection.)

Uploads (`is_upload`: files, multipart predictions) are streamed to disk, not read into memory:
they have their own cap, max_upload_bytes, and hold nothing of the in-memory budget. A pushed
model archive (`is_push`) is an upload with a cap of its own, max_push_bytes."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foretell.api.errors import dialect_of_path, error_response
from foretell.errors import BodiesInFlightFull, ForetellError, PayloadTooLarge

UPLOADS = "/v1/files"  # POST: a file, streamed to disk
# POST: a model folder's archive, streamed to disk (api.dialects.native.push)
_PUSHES = re.compile(r"^/v1/models/[^/]+/[^/]+/versions$")


class BodyBudget:
    """Bytes of request bodies that unfinished requests hold, against a cap. One event loop
    runs every take and release, so no lock is needed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def check(self, size: int) -> None:
        """Raise BodiesInFlightFull if a body of `size` bytes could not be held now."""
        if self.held + size > self.limit:
            raise BodiesInFlightFull(size, self.held, self.limit)

    def take(self, size: int, body: int) -> None:
        """Hold `size` more bytes of a `body` bytes long so far, or raise BodiesInFlightFull."""
        if self.held + size > self.limit:
            raise BodiesInFlightFull(body, self.held, self.limit)
        self.held += size

    def release(self, size: int) -> None:
        self.held -= size


def admit(
    declared: bytes | None, limit: int, budget: BodyBudget, setting: str | None = None
) -> None:
    """Refuse a request by its Content-Length, before any of its body is read: PayloadTooLarge
    over `limit`, BodiesInFlightFull if it does not fit in what `budget` has free now (nothing
    is held for it: a client that declares a size and sends nothing holds nothing)."""
    if declared is not None and declared.isdigit():
        size = int(declared)
        if size > limit:
            raise PayloadTooLarge(size, limit, setting)
        budget.check(size)


def hold(budget: BodyBudget, limit: int, held: int, size: int, setting: str | None = None) -> int:
    """Hold `size` more bytes of a body of which `held` are held; returns how many are now.
    Past `limit`, a 413 (FastAPI turns any other error raised while reading a body into a bare
    400); past what `budget` has free, BodiesInFlightFull."""
    total = held + size
    if total > limit:
        raise HTTPException(413, PayloadTooLarge(total, limit, setting).message)
    budget.take(size, total)
    return total


def is_upload(method: str, path: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request's body is an upload: POST /v1/files, a multipart POST
    /v1/predictions, or a push (`is_push`). Such a body is streamed to disk (FileService.upload,
    the push route), never held whole: it has its own cap (max_upload_bytes; a push's
    max_push_bytes), holds nothing of the in-memory budget, and goes to FastAPI's route, not the
    fast lane (which reads a body whole)."""
    if method != "POST":
        return False
    if path == UPLOADS or is_push(method, path):
        return True
    if path == "/v1/predictions":
        for name, value in headers:  # ASGI's names are lower case
            if name == b"content-type":
                return value[:19].lower() == b"multipart/form-data"
    return False


def is_push(method: str, path: str) -> bool:
    """Whether a request pushes a model version: its body, an archive, may be far larger than
    other uploads (max_push_bytes)."""
    # The suffix first: this runs on every POST, and a regex on each prediction's path is waste.
    return method == "POST" and path.endswith("/versions") and _PUSHES.match(path) is not None


class BodyLimit:
    """ASGI middleware: 413 on a Content-Length over the limit, or a stream that grows past it;
    503 + Retry-After on one that would take the bodies in flight past `in_flight` bytes.

    A request holds the bytes of its body as they arrive, until it has been answered. A
    Content-Length that does not fit in what is free now is refused at once (nothing is held
    for it: a client that declares a size and sends nothing holds nothing)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        in_flight: int,
        upload_limit: int | None = None,
        push_limit: int | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.budget = BodyBudget(in_flight)
        # Uploads (is_upload) go to disk as they arrive: their own cap, and a budget of their
        # own that never refuses (it counts what they hold in flight, nothing more).
        self.upload_limit = upload_limit or limit
        self.push_limit = push_limit or self.upload_limit
        self.uploads = BodyBudget(sys.maxsize)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, budget, setting = self.limit, self.budget, None
        if is_push(scope["method"], scope["path"]):
            limit, budget, setting = self.push_limit, self.uploads, "max_push_bytes"
        elif is_upload(scope["method"], scope["path"], scope["headers"]):
            limit, budget, setting = self.upload_limit, self.uploads, "max_upload_bytes"
        try:
            admit(dict(scope["headers"]).get(b"content-length"), limit, budget, setting)
        except ForetellError as refused:
            await _refuse(scope, receive, send, refused)
            return
        held = 0

        async def counted() -> Message:
            nonlocal held
            message = await receive()
            size = len(message.get("body", b""))
            if size:  # a refusal is raised to the route reading it
                held = hold(budget, limit, held, size, setting)
            return message

        try:
            await self.app(scope, counted, send)
        finally:  # answered, failed or disconnected: its body is no longer held here
            budget.release(held)


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: ForetellError) -> None:
    # Before routing: in the shape of the dialect that owns the path (OIP's /v2), if one does.
    await error_response(exc, dialect_of_path(scope["path"]))(scope, receive, send)
