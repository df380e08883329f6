"""The hot routes answered straight from the HTTP connection: no ASGI scope handed down through
middleware, no receive/send messages, no Starlette response sending itself; the status line,
headers and body go out in one write.

api.connection hands a request here once its head is in, if its method and path are a hot
route's (api.hotpath), and uvicorn's ASGI cycle for everything else. The request keeps uvicorn's
connection handling (pipelining, keep-alive, flow control, the graceful stop's drain, which waits
for this lane's tasks as for ASGI ones) and every protection the ASGI stack gives the route, by
the same code: the body limit and the bytes held in flight (a `limits.BodyBudget` shared with
the ASGI stack's `BodyLimit`), gzip/deflate decoding within the limit and 415 for other codings
(`encoding.decode`), then auth, the handler and the dialect's error shapes (`HotPaths.answer`,
which the ASGI lane calls too). The head cap, read timeouts and connection cap are the
connection's own. uvicorn's proxy-headers middleware only rewrites the scope's client and
scheme, which no hot route reads.

Measured (bench/front_end.py --constant, bench/README.md): the front alone costs 64 us of server
CPU a request here against 83 through the ASGI stack, and 102 on granian's ASGI server; granian's
RSGI doing the same work matched the lane (64), but serves no ASGI app beside it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterable
from functools import partial
from time import perf_counter
from typing import cast

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)

from foretell.api import access
from foretell.api.access import CLIENT_LEFT, sent_id
from foretell.api.cors import crosses
from foretell.api.encoding import codings, decode, decoded_headers, refusal
from foretell.api.errors import dialect_of_path, error_response
from foretell.api.hotpath import HotPaths, HotRoute
from foretell.api.limits import BodyBudget, admit, hold, is_upload
from foretell.api.request_id import HEADER, begin
from foretell.api.sse import EventStream
from foretell.errors import ForetellError
from foretell.tracing import Tracing

log = logging.getLogger(__name__)

Matched = tuple[str, HotRoute, dict[str, str]]  # (template, route, path parameters)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Lane:
    """Serves the routes of `hot` on uvicorn's request cycles (api.connection calls it)."""

    def __init__(
        self,
        hot: HotPaths,
        *,
        limit: int,
        budget: BodyBudget,
        access_log: bool = True,
        cross_origin: bool = False,
        tracer: Tracing | None = None,
    ) -> None:
        self.hot = hot
        self.limit = limit  # a body's bytes, as sent and as decoded
        self.budget = budget  # the bytes unfinished requests hold, the ASGI stack's too
        self.cross_origin = cross_origin  # CORS on: a request with an Origin is not this lane's
        self.access_log = access_log  # a line a request in api.access's log
        self.tracer = tracer  # None: tracing off (foretell.tracing)

    def match(
        self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Matched | None:
        """The hot route for a request; None for FastAPI's, for an upload (streamed to disk
        by its route, where this lane would read the body whole: limits.is_upload), and with
        CORS on for a request with an Origin (a browser's: the ASGI stack adds CORS headers)."""
        matched = self.hot.match(method, path)
        if matched is not None and is_upload(method, path, headers):
            return None
        if matched is not None and self.cross_origin and crosses(headers):
            return None  # CORS headers are the ASGI stack's (api.cors)
        return matched

    async def serve(self, cycle: RequestResponseCycle, matched: Matched) -> None:
        """Answer the request of `cycle`, as uvicorn's `run_asgi` would run an app on it."""
        started = perf_counter()
        body = _Body(cycle, self)
        # Its own task (api.connection): the request's id is this task's alone, never reset.
        info = begin(sent_id(cycle.scope["headers"]))
        status = CLIENT_LEFT
        tracer = self.tracer
        if tracer is not None:
            span, token = tracer.request(cycle.scope["method"], matched[0], cycle.scope["headers"])
        try:
            response = await self._respond(cycle, matched, body)
            if response is not None:
                response.raw_headers.append((HEADER, info.raw))
                status = response.status_code
            if isinstance(response, EventStream):  # a body sent as it happens, on the cycle
                response.abort = partial(cut_off, cycle)
                response.bound_send_buffer = partial(bound_send_buffer, cycle)
                scope, receive = cast(Scope, cycle.scope), cast(Receive, cycle.receive)
                await response(scope, receive, cast(Send, cycle.send))
            elif response is not None:
                if cycle.flow.write_paused and not cycle.disconnected:
                    await cycle.flow.drain()
                if not cycle.disconnected:  # else nobody is left to answer, as in ASGI
                    _write(cycle, response)
                else:
                    status = CLIENT_LEFT
                if response.background is not None:
                    await response.background()
        except Exception:  # a bug past the error table (a bad header): as run_asgi does
            log.exception("Exception answering %s %s", cycle.scope["method"], matched[0])
            cycle.transport.close()
            status = 500
        except BaseException:  # cancelled: the server gave up on it
            cycle.transport.close()
            raise
        finally:
            self.budget.release(body.held)
            cycle.on_response = _nothing
            if tracer is not None:
                tracer.ended(span, token, status, info.id)
            if self.access_log:
                access.write(cast(Scope, cycle.scope), status, started, info)

    async def _respond(
        self, cycle: RequestResponseCycle, matched: Matched, body: _Body
    ) -> Response | None:
        scope = cycle.scope
        raw = cast(list[tuple[bytes, bytes]], scope["headers"])  # uvicorn's parser's list
        declared = None
        for name, value in raw:
            if name == b"content-length":
                declared = value
        try:  # as limits.BodyLimit refuses it
            admit(declared, self.limit, self.budget)
        except ForetellError as refused:
            return error_response(refused, dialect_of_path(scope["path"]))
        applied = codings(raw)
        if applied:  # as encoding.ContentDecoding hands it on
            headers = Headers(raw=decoded_headers(raw))
            return await self.hot.answer(scope["method"], matched, headers, body.decoded(applied))
        return await self.hot.answer(scope["method"], matched, Headers(raw=raw), body.read)


class _Body:
    """A request's body as it arrives on its cycle, held in the budget byte by byte."""

    def __init__(self, cycle: RequestResponseCycle, lane: Lane) -> None:
        self.cycle = cycle
        self.lane = lane
        self.held = 0

    async def read(self) -> bytes:
        """The whole body; ClientDisconnect if the client left (or was cut off) first."""
        cycle, lane = self.cycle, self.lane
        if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
            cycle.transport.write(_CONTINUE)
            cycle.waiting_for_100_continue = False
        chunks: list[bytes] = []
        while True:
            if cycle.disconnected:  # never handled as if the body were whole
                raise ClientDisconnect()
            if cycle.body:
                chunk = bytes(cycle.body)
                cycle.body = bytearray()
                self.held = hold(lane.budget, lane.limit, self.held, len(chunk))
                chunks.append(chunk)
            if not cycle.more_body:
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            # The protocol sets the event on more body, its end, or a disconnect.
            cycle.message_event.clear()
            cycle.flow.resume_reading()
            await cycle.message_event.wait()

    def decoded(self, applied: list[str]) -> _Decoded:
        return _Decoded(self, applied)


class _Decoded:
    """Reads a body sent with Content-Encoding `applied`, decoded within the limit."""

    def __init__(self, body: _Body, applied: list[str]) -> None:
        self.body = body
        self.applied = applied

    async def __call__(self) -> bytes:
        sent = await self.body.read()
        try:
            return decode(sent, self.applied, self.body.lane.limit)
        except ForetellError as exc:
            raise refusal(exc) from None


def _write(cycle: RequestResponseCycle, response: Response) -> None:
    """`response` as one write, then the cycle complete, as uvicorn's `send` leaves it."""
    keep_alive = cycle.keep_alive
    closing = False
    parts = [STATUS_LINE[response.status_code]]
    for name, value in (*cycle.default_headers, *response.raw_headers):
        if HEADER_VALUE_RE.search(value):
            raise RuntimeError(f"invalid value of response header {name!r}")
        if name == b"connection" and b"close" in value.lower():
            keep_alive, closing = False, True
        parts += (name, b": ", value, b"\r\n")
    if not keep_alive and not closing:
        parts.append(b"connection: close\r\n")
    parts += (b"\r\n", cast(bytes, response.body))
    cycle.transport.write(b"".join(parts))
    cycle.keep_alive = keep_alive
    cycle.response_started = cycle.response_complete = True
    cycle.message_event.set()
    if not keep_alive:
        cycle.transport.close()
    cycle.on_response()


def bound_send_buffer(cycle: RequestResponseCycle, nbytes: int) -> None:
    """Hold at most about `nbytes` of `cycle`'s answer in the kernel for its reader (an event
    stream's: api.sse), so that one who stops reading is seen to stall, and cut, soon."""
    sock = cycle.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # a connection already gone
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, nbytes)


def cut_off(cycle: RequestResponseCycle) -> None:
    """Close `cycle`'s connection now, dropping what it has not sent: an event stream's reader
    that stopped reading (api.sse), whose buffered bytes a plain close would wait to send."""
    cycle.transport.abort()
    cycle.disconnected = True  # as connection_lost will say: nobody left to answer or log


def _nothing() -> None:
    pass
