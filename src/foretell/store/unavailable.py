"""Which database failures mean the store cannot be reached now: the one place the store's
reads (reader.py) and writes (writer.py) turn a driver's error into StoreUnavailable.

Unavailable: the connection was lost (SQLAlchemy saw a disconnect), or the driver could not
connect or talk to the server at all (psycopg's errors without a SQLSTATE: refused, timed out,
"server closed the connection unexpectedly"), or the server said it is going away or not taking
connections (class 08; 57P01 "terminating connection due to administrator command", 57P02,
57P03 "the database system is shutting down" / "is starting up"; 53300 too many connections).
On SQLite, BUSY and LOCKED: another process held the write lock past busy_timeout (5 s) and
nothing was written, so the caller's remedy is the same, to try again shortly. Everything else
(a constraint, a bad query, a full disk, a deadlock) stays as it was: retrying later would not
help it, or the store already retries it.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from foretell.errors import StoreUnavailable

_GOING_AWAY = frozenset({"57P01", "57P02", "57P03", "53300"})
_SQLITE_BUSY = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (primary result codes)
_CAUSE_CHARS = 200


def lost_connection(error: BaseException) -> bool:
    """The connection the statement ran on is gone (SQLAlchemy invalidated it)."""
    return isinstance(error, DBAPIError) and error.connection_invalidated


def is_unavailable(error: BaseException) -> bool:
    """`error` says the database cannot be reached now, rather than that the request is wrong."""
    if lost_connection(error):
        return True
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    driver_error = error.orig
    if isinstance(driver_error, sqlite3.Error):
        return getattr(driver_error, "sqlite_errorcode", 0) & 0xFF in _SQLITE_BUSY
    state = getattr(driver_error, "sqlstate", None)
    return state is None or state.startswith("08") or state in _GOING_AWAY


def unavailable(error: BaseException, url: URL) -> StoreUnavailable | None:
    """StoreUnavailable naming the store at `url` and the driver's cause, if `error` says the
    database cannot be reached now; None for any other error."""
    if not is_unavailable(error):
        return None
    return StoreUnavailable(store_name(url), _cause(error))


def store_name(url: URL) -> str:
    """The store's URL as an error may show it: no password, no query (it may hold one), and
    the scheme a user writes (`postgresql://`, not the driver's `postgresql+psycopg://`)."""
    # URL.set takes None as "unchanged": the password is dropped by the tuple's own _replace.
    shown = url.set(drivername=url.get_backend_name(), query={})._replace(password=None)
    return shown.render_as_string(hide_password=False)


def _cause(error: BaseException) -> str:
    """The driver's own first line (libpq adds hints on the next ones), bounded."""
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    lines = str(driver_error).strip().splitlines()
    first = lines[0].strip() if lines else type(driver_error).__name__
    return first if len(first) <= _CAUSE_CHARS else first[:_CAUSE_CHARS] + "…"
