"""Reader: runs SELECTs on the store's own threads, off the event loop.

Not the loop's default executor: that one also resolves host names (webhook deliveries, for
one), and a slow DNS server must not queue up a GET behind its lookups. A database that cannot
be reached is StoreUnavailable (see unavailable.py); the pool pings a connection as it hands it
out, so the first read after a server restart gets a new one instead of the dead one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, RowMapping, Select
from sqlalchemy.exc import DBAPIError

from foretell.store.unavailable import unavailable

THREADS = 4  # SQLite reads in WAL mode run side by side; more threads only contend for the GIL


class Reader:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="foretell-reader")

    async def rows(self, query: Select[Any]) -> Sequence[RowMapping]:
        """Every row of `query`, as mappings."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._fetch, query)

    def close(self) -> None:
        self._threads.shutdown(wait=True)

    def _fetch(self, query: Select[Any]) -> Sequence[RowMapping]:
        try:
            with self._engine.connect() as conn:
                return conn.execute(query).mappings().all()
        except DBAPIError as error:
            if (down := unavailable(error, self._engine.url)) is None:
                raise
            raise down from error
