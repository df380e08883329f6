"""Server-Sent Events: events written as SSE, kept alive, and cut when their reader stalls.

Dialect-free: a route hands `EventStream` an async iterator of events (anything with `event`,
`data` and `id`, such as service.stream's StreamEvent) and, if its wire format is not plain SSE
(OIP's generate_stream), a `render` of its own. The response ends when the events end, at once
when the client leaves (the iterator is closed, no task left behind), and when the client's
connection has taken nothing for `stall_s`: a reader that does not read must not hold the
events it has not taken (the service's own buffers cut a reader that falls behind them too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from foretell.service.stream import cut as stream_cut

log = logging.getLogger(__name__)

KEEP_ALIVE = b": keep-alive\n\n"
# The scope's key for a function closing the request's connection (api.connection sets it).
CLOSE = "foretell.close"
# The scope's key for a function setting the connection's kernel send buffer (api.connection).
SEND_BUFFER = "foretell.send_buffer"
# What a stream's connection may hold in the kernel for its reader (Linux doubles it for its own
# bookkeeping): left to autotuning, a stalled reader's socket grew to 4 MB before the stall cut
# could see anything (bench/streams.py), where an event of a token is a few dozen bytes.
STREAM_SEND_BUFFER_BYTES = 64 * 1024
KEEP_ALIVE_S = 15.0  # under the idle timeouts proxies commonly keep (nginx's 60 s, ELB's 60 s)
_CUT_SEND_S = 1.0  # how long the cut event of a stalled reader is given to go out
_LINES = re.compile(r"\r\n|\r|\n")
HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx would otherwise buffer the stream whole
}


class Event(Protocol):
    """One event of a stream (service.stream.StreamEvent is one)."""

    @property
    def event(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def id(self) -> str | None: ...


def encode(event: Event) -> bytes:
    """`event` as SSE: its name, its id when it has one, one `data:` line per line of its data,
    and the blank line that ends it. SSE cannot carry a CR: a CR or CRLF arrives as LF."""
    parts = [f"event: {event.event}\n"]
    if event.id is not None:
        parts.append(f"id: {event.id}\n")
    parts.extend(f"data: {line}\n" for line in _LINES.split(event.data))
    parts.append("\n")
    return "".join(parts).encode()


Render = Callable[[Any], bytes | None]  # an event's bytes on the wire; None: not sent


class EventStream(Response):
    """The response whose body is `events`, each written by `render` (SSE by default), with
    `: keep-alive` comments every `keep_alive_s` that nothing else is sent."""

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[Any],
        *,
        stall_s: float,
        render: Render = encode,
        keep_alive_s: float = KEEP_ALIVE_S,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.events = events
        self.stall_s = stall_s
        self.event_bytes = render
        self.keep_alive_s = keep_alive_s
        self.status_code = status_code
        self.background: BackgroundTask | None = None
        # Set by a server lane that can close the connection itself (api.lane), as the scope's
        # CLOSE is by api.connection: a stalled reader's connection is closed, where ASGI
        # alone can only give up on the response. And its send buffer bounded (SEND_BUFFER).
        self.abort: Callable[[], None] | None = None
        self.bound_send_buffer: Callable[[int], None] | None = None
        self.init_headers({**HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bound = self.bound_send_buffer or scope.get(SEND_BUFFER)
        if bound is not None:
            bound(STREAM_SEND_BUFFER_BYTES)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            pace = _Pace(asyncio.get_running_loop().time)
            ended = await _first(
                self._pump(send, pace), self._watch(send, pace), _disconnected(receive)
            )
        finally:
            await _close(self.events)
        if ended is True:  # the events ended: the body's end (a cut or a departure has none)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif ended is False:  # a stalled reader: its connection closed, where the server can
            abort = self.abort or scope.get(CLOSE)
            if abort is not None:
                abort()

    async def _pump(self, send: Send, pace: _Pace) -> bool:
        """Send the events until they end (True). Each is awaited and sent as it is: no task
        nor timer a event (30 us each, where 200 readers of 40 tokens a second make 8,000
        events a second); `_watch` keeps time for all of them."""
        async for event in self.events:
            rendered = self.event_bytes(event)
            if rendered is not None:
                await pace.sent(send, rendered)
        return True

    async def _watch(self, send: Send, pace: _Pace) -> bool:
        """Returns False once a send has waited `stall_s` (the reader takes nothing: after a
        last try at a cut event); meanwhile writes a keep-alive comment whenever nothing went
        out for `keep_alive_s`."""
        clock = pace.clock
        while True:
            now = clock()
            if pace.sending_since is not None:  # a send waits for the reader
                stalled_at = pace.sending_since + self.stall_s
                if now < stalled_at:
                    await asyncio.sleep(stalled_at - now)
                    continue
            else:
                due = pace.last_sent + self.keep_alive_s
                if now < due:
                    # A send may start while this sleeps: looking again within stall_s sees it
                    # stall in time, where a sleep until the keep-alive (15 s) cut a reader
                    # that stalled after a quiet spell that late with a shorter stream_stall_s.
                    await asyncio.sleep(min(due - now, self.stall_s))
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.stall_s):
                        await pace.sent(send, KEEP_ALIVE)
                        continue
            reason = f"the connection took nothing for {self.stall_s:g} s"
            cut = self.event_bytes(stream_cut(reason))
            if cut is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_CUT_SEND_S):
                        await send({"type": "http.response.body", "body": cut, "more_body": True})
            log.info("an event stream's reader stalled for %g s: cut", self.stall_s)
            return False


class _Pace:
    """When a stream last sent, and since when its send in progress waits (None: none does)."""

    __slots__ = ("clock", "last_sent", "sending_since")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.last_sent = clock()
        self.sending_since: float | None = None

    async def sent(self, send: Send, chunk: bytes) -> None:
        self.sending_since = self.clock()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.sending_since = None
        self.last_sent = self.clock()


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _first(pump: Any, watch: Any, gone: Any) -> bool | None:
    """The pump's answer (True: the events ended), the watch's (False: the reader stalled), or
    None if the client left first; the others are canceled."""
    tasks = [asyncio.ensure_future(c) for c in (pump, watch, gone)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks[:2]:
        if task.done() and not task.cancelled():
            result: bool = task.result()  # a failing iterator raises here, after the cleanup
            return result
    return None


async def _close(events: AsyncIterator[Any]) -> None:
    """Close `events` if it is a generator, so what it holds (a reader's place) goes now."""
    close = getattr(events, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            log.exception("closing an event stream")
