"""The HTTP/1.1 connection: uvicorn's httptools protocol with a cap on the request head, timeouts
on reading a request, and a cap on connections, each refusal answered in JSON.

uvicorn sets none of these for httptools: the parser keeps an unfinished header line in memory
however long it grows (ten connections sending 50 MB each took a server from 646 to 1111 MB of
RSS, before any key was checked), and a request that stops arriving half way waits forever (eight
stalled uploads held the body budget; see api.limits). The class below adds, without touching
what uvicorn does with a request once its head is in:

- the head (request line and headers) is capped at `max_head_bytes`: 431, connection closed;
- the head must arrive within `header_timeout_s` of its first byte, and a body must not go
  `body_timeout_s` without a byte: 408, connection closed. A new connection that sends nothing
  is closed after `keep_alive_s`, as an idle one between requests is;
- past `max_connections` open connections or requests in progress, a request is 503 with
  Retry-After (uvicorn's own `limit_concurrency` check, answered in JSON instead of plain text).

A request that arrives in one read, nearly every one, costs a few attribute writes and no timer;
timers are started only for heads and bodies that span reads. HTTP the parser refuses gets a
JSON 400 here too, where uvicorn answers in plain text.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn._types import ASGI3Application
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from foretell.api.access import Requests, sent_id
from foretell.api.errors import dialect_of_path, error_response
from foretell.api.lane import Lane, bound_send_buffer, cut_off
from foretell.api.request_id import HEADER, chosen
from foretell.api.sse import CLOSE, SEND_BUFFER
from foretell.config import Settings
from foretell.errors import (
    ConnectionsFull,
    ForetellError,
    HeadTooLarge,
    InvalidRequest,
    ReadTimedOut,
)

log = logging.getLogger(__name__)
# Called by name, not through super(): these run for every request, and super() costs about
# 0.15 us a call here (Python 3.11), several times a plain call.
_Base = HttpToolsProtocol

# What the connection is reading now; None between requests (uvicorn's keep-alive timer runs).
HEAD, BODY = "headers", "body"


class LimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol under the limits above; `protocol_for` sets them."""

    max_head_bytes = 64 * 1024
    header_timeout_s = 10.0
    body_timeout_s = 30.0
    max_connections = 1000
    lane: Lane | None = None  # the hot routes, answered without ASGI (api.lane)
    access_log = True  # a refusal answered through ASGI is logged as a request (api.access)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limit_concurrency = None  # checked in on_headers_complete, answered in JSON
        self._reading: str | None = None
        # Per read: its size, how many heads began in it, and whether any body bytes were in it.
        self._chunk = 0
        self._begun = 0
        self._body_in_read = False
        # The current head's bytes in earlier reads: certainly its own (`_held`, which the cap
        # is held against), and at most (`_head_high`, including the read it began in, whose
        # first bytes may have been the previous request's). Once the head is in, `_held`
        # counts reads with no body bytes: a chunked body's framing and trailers, which
        # httptools keeps in memory until their line ends, as it does a header's.
        self._held = 0
        self._head_high = 0
        self._body_got = 0  # bytes of the current request's body so far
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Until its first byte a new connection is as idle as one between requests.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._reading = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        self._chunk = len(data)
        before = self._reading
        self._begun = 0
        self._body_in_read = False
        _Base.data_received(self, data)
        reading = self._reading
        if reading is None or self.transport.is_closing():
            return  # the whole request (or none of the next) was in this read
        if (self._begun == 0 and reading is before and not self._body_in_read) or (
            self._begun == 1 and before is None and reading is HEAD
        ):  # the whole read is the unfinished head's (or its trailers')
            self._held += self._chunk
            if self._held > self.max_head_bytes:
                self._abort(HeadTooLarge(self._held, self.max_head_bytes, finished=False))
                return
        now = self.loop.time()
        if reading is BODY:
            self._deadline = now + self.body_timeout_s
        else:
            self._head_high += self._chunk
            if self._begun:  # its clock starts with its first read
                self._deadline = now + self.header_timeout_s
        self._arm()

    def on_message_begin(self) -> None:
        _Base.on_message_begin(self)
        self._reading = HEAD
        self._begun += 1
        self._held = self._head_high = 0

    def on_headers_complete(self) -> None:
        self._reading = BODY
        self._body_got = 0
        refusal: ForetellError | None = None
        # Counted only when the reads it came in could hold more than the cap.
        if self._head_high + self._chunk > self.max_head_bytes:
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > self.max_head_bytes:
                refusal = HeadTooLarge(size, self.max_head_bytes)
        self._held = 0  # from here: the body's framing and trailers
        if refusal is None and (
            len(self.connections) >= self.max_connections or len(self.tasks) >= self.max_connections
        ):
            refusal = ConnectionsFull(self.max_connections)
        if refusal is None:
            _Base.on_headers_complete(self)
            return
        log.info("%s: %s", _peer(self.client), refusal.message)
        # uvicorn starts the request's app in here (as it does its own 503 app): run a refusal,
        # with its X-Request-Id and access line as any answer's.
        app, self.app = self.app, _Refused(_Refusal(refusal), access_log=self.access_log)
        try:
            _Base.on_headers_complete(self)
        finally:
            self.app = app

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # Where uvicorn starts a request's app, now or once the pipelined ones before it end.
        lane = self.lane
        if lane is not None and not isinstance(app, _Refused):
            scope = cycle.scope
            matched = lane.match(scope["method"], scope["path"], scope["headers"])
            if matched is not None:
                task = self.loop.create_task(lane.serve(cycle, matched))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)  # the graceful stop drains these as it does ASGI's
                return
        # How an event stream closes the connection of a reader that stalled (api.sse): ASGI
        # has no way to, and a response left unfinished is logged by uvicorn as an app's error.
        cycle.scope[CLOSE] = partial(cut_off, cycle)  # type: ignore[literal-required]
        cycle.scope[SEND_BUFFER] = partial(bound_send_buffer, cycle)  # type: ignore[literal-required]
        _Base._start_asgi_task(self, cycle, app)

    def on_body(self, body: bytes) -> None:
        self._body_in_read = True
        self._body_got += len(body)
        _Base.on_body(self, body)

    def eof_received(self) -> None:
        # The client closed its side mid-body: its request can never be whole. Say so (it may
        # still read) rather than only close; the app reads a disconnect and keeps nothing.
        if self._reading is not BODY or self.cycle is None:
            return
        declared = dict(self.headers).get(b"content-length", b"")
        if declared.isdigit():
            sent = f"{self._body_got} of the {int(declared)} bytes its Content-Length declared"
        else:
            sent = f"{self._body_got} bytes, before its last chunk"
        self._abort(
            InvalidRequest(
                f"the request's body ended after {sent}: the client closed its side of the "
                "connection"
            )
        )

    def on_message_complete(self) -> None:
        _Base.on_message_complete(self)
        self._reading = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def send_400_response(self, msg: str) -> None:
        # The parser refused what arrived (uvicorn says only that); uvicorn would answer in text.
        cycle = self.cycle
        if self._reading is not BODY and cycle is not None and not cycle.response_started:
            # Bytes after a body, while its request is still unanswered: most likely more body
            # than its Content-Length said. That request's answer would be the wrong one (an
            # upload cut short would be stored), so this one takes its place.
            self._abort(
                InvalidRequest(
                    "the bytes after the request's body are not a valid request: was the body "
                    "longer than its Content-Length said?"
                ),
                unanswered=True,
            )
            return
        self._abort(
            InvalidRequest(
                "the request is not valid HTTP/1.1 (a malformed request line or header, an "
                "unknown method, or a conflicting Content-Length or Transfer-Encoding)"
            )
        )

    def _arm(self) -> None:
        """Have `_expire` run by the deadline (a later deadline is checked for when it runs)."""
        if self._timer is not None:
            if self._timer_at <= self._deadline:
                return
            self._timer.cancel()
        self._timer_at = self._deadline
        self._timer = self.loop.call_at(self._deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        reading = self._reading
        if reading is None or self.transport.is_closing():
            return
        timeout_s = self.body_timeout_s if reading is BODY else self.header_timeout_s
        now = self.loop.time()
        if self.flow.read_paused:  # uvicorn stopped reading, not the client: its clock restarts
            self._deadline = now + timeout_s
        if now < self._deadline:
            self._arm()
            return
        setting = "body_timeout_s" if reading is BODY else "header_timeout_s"
        self._abort(ReadTimedOut(reading, timeout_s, setting))

    def _abort(self, exc: ForetellError, *, unanswered: bool = False) -> None:
        """Answer `exc` and close the connection; only close it if an answer is under way.
        With `unanswered`, `exc` is the answer to the request before, if it has none yet."""
        log.info("%s: %s", _peer(self.client), exc.message)
        cycle = self.cycle
        if self._reading is BODY or unanswered:  # the cycle is this request's
            writable = not cycle.response_started
        else:  # no cycle yet; the previous request's must be answered
            writable = cycle is None or cycle.response_complete
        if writable:
            self.transport.write(self._answer(exc))
        if cycle is not None and not cycle.response_complete:
            # Its app reads a disconnect and its answer goes nowhere, as if the client had left.
            cycle.disconnected = True
            cycle.message_event.set()
        self._reading = None
        self.transport.close()

    def _answer(self, exc: ForetellError) -> bytes:
        """`exc` as the response the app would give: JSON in the path's dialect, if it is known."""
        path = self.scope.get("path") if self._reading is BODY else None
        response = error_response(exc, dialect_of_path(path) if path else None)
        lines = [STATUS_LINE[response.status_code]]
        # The request's own X-Request-Id once its head is in; else one made for the answer.
        sent = sent_id(self.headers) if self._reading is BODY else None
        headers = [*self.server_state.default_headers, *response.raw_headers]
        headers.append((HEADER, chosen(sent)))
        if (b"connection", b"close") not in headers:
            headers.append((b"connection", b"close"))
        for name, value in headers:
            lines += [name, b": ", value, b"\r\n"]
        return b"".join([*lines, b"\r\n", response.body])


class _Refusal:
    """The ASGI app that answers a request refused before its app could see it."""

    def __init__(self, exc: ForetellError) -> None:
        self.exc = exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(self.exc, dialect_of_path(scope["path"]))(scope, receive, send)


class _Refused(Requests):
    """A `_Refusal` with its X-Request-Id and access line, as the server's stack gives any."""


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"


def protocol_for(settings: Settings, lane: Lane | None = None) -> type[LimitedHttpTools]:
    """The protocol class for uvicorn's `http=`, holding `settings`' limits, and serving the
    hot routes of `lane` (if given) itself."""

    class Limited(LimitedHttpTools):
        max_head_bytes = settings.max_head_bytes
        header_timeout_s = settings.header_timeout_s
        body_timeout_s = settings.body_timeout_s
        max_connections = settings.max_connections
        access_log = settings.access_log

    Limited.lane = lane
    return Limited
