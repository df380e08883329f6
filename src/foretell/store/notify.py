"""Notices between API processes: a prediction's end was stored (DONE), someone asks to cancel
one (CANCEL). The payload is the prediction's id.

`publish` writes a notice inside the caller's transaction, so it is heard only if that commits
(a terminal write announces its own end). A `Listener` hears every process's notices, its own
included, and calls each subscriber with the payload, or with None to say "notices may have been
missed: re-read what you wait for".

- PostgreSQL: NOTIFY, heard through LISTEN on one dedicated connection per process. A notice sent
  while that connection is down is lost, so after each (re)connect every subscriber is told None.
  It reconnects with backoff, and probes an idle connection so a dead one is noticed.
- SQLite (one machine): no NOTIFY. A notice is a row of `notices`; each process polls past the
  last row it saw every POLL_S (so a cancel or an end reaches another process within about that),
  and rows older than KEEP_S are pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, func, select

from foretell.store import raw
from foretell.store.reader import Reader
from foretell.store.tables import notices

log = logging.getLogger(__name__)

DONE = "foretell_done"
CANCEL = "foretell_cancel"
CHANNELS = (DONE, CANCEL)

Subscriber = Callable[[str | None], None]
Transact = Callable[[Callable[[Connection], Any]], Awaitable[Any]]

POLL_S = 0.2  # SQLite: how often each process reads new notices
KEEP_S = 60.0  # SQLite: how long a notice row is kept for slow readers
PRUNE_EVERY_S = 10.0
RECONNECT_FIRST_S = 0.1  # PostgreSQL: first pause before reconnecting; doubles up to the next
RECONNECT_MAX_S = 5.0
PROBE_EVERY_S = 15.0  # PostgreSQL: an idle listening connection is checked this often
CONNECT_TIMEOUT_S = 5
_PG_NOTIFY = "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) p"
_SQLITE_NOTICE = "INSERT INTO notices (channel, payload, at) VALUES (?, ?, ?)"


def publish(conn: Connection, channel: str, payloads: Sequence[str]) -> None:
    """Announce `payloads` on `channel` when the transaction `conn` is in commits. Through the
    driver (store.raw): a terminal write publishes its prediction's end in its transaction."""
    if conn.dialect.name == "postgresql":
        with raw.driver_cursor(conn, _PG_NOTIFY) as cursor:
            cursor.execute(_PG_NOTIFY, (channel, list(payloads)))
        return
    at = raw.sqlite_time(datetime.now(UTC))
    raw.execute_many(conn, _SQLITE_NOTICE, [(channel, p, at) for p in payloads])


class Listener(Protocol):
    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Call `subscriber` with each notice on `channel` (before `start`)."""

    async def start(self) -> None:
        """Begin listening; returns once subscribers hear what is published from now on."""

    async def close(self) -> None: ...


class _Subscribers:
    def __init__(self) -> None:
        self.by_channel: dict[str, list[Subscriber]] = {}

    def add(self, channel: str, subscriber: Subscriber) -> None:
        self.by_channel.setdefault(channel, []).append(subscriber)

    def tell(self, channel: str, payload: str | None) -> None:
        for subscriber in self.by_channel.get(channel, ()):
            try:
                subscriber(payload)
            except Exception:  # one subscriber's bug must not deafen the others
                log.exception("a subscriber of %s failed on %r", channel, payload)

    def tell_everyone(self) -> None:
        for channel in self.by_channel:
            self.tell(channel, None)


class PostgresListener:
    """LISTEN on one connection of its own, reconnecting with backoff."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._subscribers = _Subscribers()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        self._subscribers.add(channel, subscriber)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="foretell-listener")
        # The first connect is waited for, briefly: a database that is down now is the
        # writer's error to report, and the listener goes on trying in the background.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self._listening.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        import psycopg  # the postgres extra; only a PostgreSQL store gets here

        delay = RECONNECT_FIRST_S
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                ) as conn:
                    for channel in self._subscribers.by_channel:
                        await conn.execute(f'LISTEN "{channel}"')
                    self._listening.set()
                    delay = RECONNECT_FIRST_S
                    # Whatever was announced while not listening was missed.
                    self._subscribers.tell_everyone()
                    await self._hear(conn)
            except psycopg.Error as exc:
                self._listening.clear()
                log.warning(
                    "listening for notices failed (%s); reconnecting in %g s",
                    str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc),
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _hear(self, conn: Any) -> None:
        while True:
            async for notice in conn.notifies(timeout=PROBE_EVERY_S):
                self._subscribers.tell(notice.channel, notice.payload)
            await conn.execute("SELECT 1")  # quiet for a while: is the connection still there?


class PollingListener:
    """Reads the `notices` table past the last row seen, every `interval_s`."""

    def __init__(self, reader: Reader, transact: Transact, interval_s: float = POLL_S) -> None:
        self._reader = reader
        self._transact = transact
        self._interval_s = interval_s
        self._subscribers = _Subscribers()
        self._task: asyncio.Task[None] | None = None
        self._last = 0

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        self._subscribers.add(channel, subscriber)

    async def start(self) -> None:
        newest = func.coalesce(func.max(notices.c.seq), 0).label("seq")
        rows = await self._reader.rows(select(newest))
        self._last = int(rows[0]["seq"])
        self._task = asyncio.create_task(self._run(), name="foretell-notices")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + PRUNE_EVERY_S
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.poll()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_EVERY_S
                    await self._transact(_prune)
            except Exception as exc:
                log.warning("reading notices failed: %r", exc)

    async def poll(self) -> int:
        """Hear the notices written since the last poll; how many."""
        c = notices.c
        query = select(c.seq, c.channel, c.payload).where(c.seq > self._last).order_by(c.seq)
        rows = await self._reader.rows(query)
        for row in rows:
            self._last = row["seq"]
            self._subscribers.tell(row["channel"], row["payload"])
        return len(rows)


def _prune(conn: Connection) -> None:
    cutoff = datetime.now(UTC) - timedelta(seconds=KEEP_S)
    conn.execute(delete(notices).where(notices.c.at < cutoff))


def listener_for(engine: Engine, reader: Reader, transact: Transact) -> Listener:
    """LISTEN/NOTIFY on PostgreSQL; polling the notices table elsewhere."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresListener(conninfo)
    return PollingListener(reader, transact)
