"""The access log (one JSON line a request on the `foretell.access` logger) and X-Request-Id on
every answer: `Requests` wraps the ASGI stack; the fast lane (api.lane) does the same itself.

JSON lines rather than logfmt: every log shipper and `jq` read them without a grammar of their
own, a path or client id with spaces or quotes cannot break a line, and orjson writes one in
about a microsecond. Each line has `time` (UTC), `method`, `path`, `status` (499: the client
left before the answer), `duration_ms` (from the head's arrival to the answer's last byte
handed to the socket; a stream's whole length), `key_id` (the API key's id, never the key;
null without one or before it was checked), `client` (the peer's address) and `request_id`.

A line is made only if the logger would write it (`isEnabledFor`), and rendered only by the
handler that writes it: one small object a request, no formatting up front.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foretell.api.request_id import HEADER, RequestInfo, begin, end
from foretell.tracing import Tracing

log = logging.getLogger("foretell.access")
CLIENT_LEFT = 499  # nginx's: the client closed the connection before it was answered


class _Line:
    """One request's access line, rendered (by `str`) only when a handler writes it."""

    __slots__ = ("client", "duration_ms", "info", "method", "path", "status", "wall")

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        duration_ms: float,
        client: tuple[str, int] | None,
        info: RequestInfo,
    ) -> None:
        self.wall = time.time()
        self.method = method
        self.path = path
        self.status = status
        self.duration_ms = duration_ms
        self.client = client
        self.info = info

    def __str__(self) -> str:
        info = self.info
        return orjson.dumps(
            {
                "time": datetime.fromtimestamp(self.wall, UTC).isoformat(timespec="milliseconds"),
                "method": self.method,
                "path": self.path,
                "status": self.status,
                "duration_ms": round(self.duration_ms, 3),
                "key_id": info.key_id,
                "client": self.client[0] if self.client else None,
                "request_id": info.id,
            }
        ).decode()


def write(scope: Scope, status: int, started: float, info: RequestInfo) -> None:
    """Log the request of `scope`, answered `status`, begun at perf_counter() `started`."""
    if log.isEnabledFor(logging.INFO):
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        line = _Line(scope["method"], scope["path"], status, elapsed_ms, scope.get("client"), info)
        # Logger.info less its caller lookup (a walk up the stack, a third of its cost here):
        # the line says where it is from.
        log.handle(logging.LogRecord(log.name, logging.INFO, __file__, 0, line, None, None))


def sent_id(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The request's X-Request-Id, as sent (the last, if several)."""
    found = None
    for name, value in headers:
        if name == HEADER:
            found = value
    return found


class Requests:
    """ASGI wrapper: each HTTP request gets its id (api.request_id), its answer X-Request-Id,
    and, with `access_log`, its line in the access log."""

    def __init__(self, app: ASGIApp, *, access_log: bool, tracer: Tracing | None = None) -> None:
        self.app = app
        self.access_log = access_log
        self.tracer = tracer  # None: tracing off (foretell.tracing)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info = begin(sent_id(scope["headers"]))
        status = CLIENT_LEFT
        tracer = self.tracer
        if tracer is not None:
            span, token = tracer.request(scope["method"], scope["path"], scope["headers"])

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (HEADER, info.raw)]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, answer)
        except Exception:
            if status == CLIENT_LEFT:
                status = 500  # what the server answers an app that raised
            raise
        finally:
            if tracer is not None:
                # FastAPI's router leaves the route it took in the scope: named by its template.
                template = getattr(scope.get("route"), "path", None)
                route = None if template is None else (scope["method"], template)
                tracer.ended(span, token, status, info.id, route)
            end(info)
            if self.access_log:
                write(scope, status, started, info)
