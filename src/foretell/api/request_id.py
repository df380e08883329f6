"""The request in flight: its id (X-Request-Id, the caller's if sane, else made here) and its
API key's id, in a context variable that the record, log lines and webhooks read.

A caller's id is kept when it is 1 to 128 printable ASCII characters, and replaced by one made
here otherwise (as Heroku's router replaces an invalid X-Request-Id): the id is for finding a
request's traces, so a proxy that sends a long or odd one should not cost its caller the
prediction. The answer's X-Request-Id says which id the request was filed under.

Each request runs in an asyncio task of its own (uvicorn's for ASGI, api.connection's for the
fast lane), so the variable set at its start is that request's alone, and tasks started while
it is handled (the prediction's) inherit it.
"""

from __future__ import annotations

import itertools
import logging
import os
from contextvars import ContextVar, Token

HEADER = b"x-request-id"
MAX_LENGTH = 128


class RequestInfo:
    """One request's id (and its bytes, for the answer's header) and, once authenticated, the
    id of the API key it came with (never the key)."""

    __slots__ = ("id", "key_id", "raw", "token")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.id = raw.decode("ascii")
        self.key_id: str | None = None
        self.token: Token[RequestInfo | None]


_current: ContextVar[RequestInfo | None] = ContextVar("foretell_request", default=None)


def begin(sent: bytes | None) -> RequestInfo:
    """The request now handled, filed under `sent` (its X-Request-Id) if that is sane; it is
    this task's request from here (`Token` to undo that, where the task goes on)."""
    info = RequestInfo(chosen(sent))
    info.token = _current.set(info)
    return info


def chosen(sent: bytes | None) -> bytes:
    """The id a request that sent `sent` as its X-Request-Id (None: none) is filed under."""
    return sent if sent is not None and sane(sent) else _made()


def end(info: RequestInfo) -> None:
    """The task that handled `info` goes on with other work (an ASGI app called in place)."""
    _current.reset(info.token)


def current() -> RequestInfo | None:
    """The request being handled in this task; None outside one (startup, a batch's task)."""
    return _current.get()


def request_id() -> str | None:
    """The id of the request being handled, for its record and what it starts."""
    info = _current.get()
    return None if info is None else info.id


def authenticated(key_id: str | None) -> None:
    """The request being handled came with the API key `key_id` (None: no key)."""
    info = _current.get()
    if info is not None:
        info.key_id = key_id


def sane(value: bytes) -> bool:
    """1 to MAX_LENGTH printable ASCII characters (space to tilde)."""
    return 0 < len(value) <= MAX_LENGTH and value.isascii() and value.decode("ascii").isprintable()


# A random prefix per process (a forked worker makes its own) and a counter: unique without a
# call to the OS's random source per request.
_prefix = ""
_counter = itertools.count()


def _new_prefix() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)


def _made() -> bytes:
    return f"{_prefix}-{next(_counter):x}".encode()


class RequestIdFilter(logging.Filter):
    """Gives each log record `request_id`: the id of the request whose handling wrote it, or
    None. On a handler, its format may then show `%(request_id)s`."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = _current.get()
        record.request_id = None if info is None else info.id
        return True
