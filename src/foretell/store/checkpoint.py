"""SQLite's WAL checkpoints on a thread of their own, off the group writer's commits.

By default SQLite checkpoints inside the commit that takes the WAL past 1000 pages: that commit
copies the WAL into the database file and fsyncs it, on the writer thread, while every caller
sharing the commit waits. Here the writer's connection turns that off (`WRITER_PRAGMA`) and a
`Checkpointer` thread runs a PASSIVE checkpoint (it never blocks a writer or a reader) every
EVERY_S once something was committed, on its own connection; sqlite3 lets go of the GIL while it
copies and syncs.

Durability is unchanged: in WAL mode with synchronous=NORMAL a commit is durable once its frames
are in the WAL (engine.py), whenever they are later copied; a process killed before a
checkpoint leaves the WAL for the next opener to recover, as SQLite always does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

log = logging.getLogger(__name__)

WRITER_PRAGMA = "PRAGMA wal_autocheckpoint=0"
EVERY_S = 0.5  # at about 4,000 rows/s the WAL grows a few MB between two checkpoints


class Checkpointer:
    """Checkpoints `engine`'s SQLite database every `every_s` while `commits()` moves on."""

    def __init__(
        self, engine: Engine, commits: Callable[[], int], *, every_s: float | None = None
    ) -> None:
        self.checkpoints = 0  # how many ran; lets tests see the thread work
        self._engine = engine
        self._commits = commits
        self._every_s = EVERY_S if every_s is None else every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foretell-checkpoint", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        seen = self._commits()
        while not self._stop.wait(self._every_s):
            commits = self._commits()
            if commits == seen:
                continue
            seen = commits
            try:
                self.checkpoint()
            except Exception:  # the next round tries again; the WAL only grows meanwhile
                log.warning("a WAL checkpoint failed", exc_info=True)

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file now, as far as readers allow."""
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
            finally:
                cursor.close()
        finally:
            connection.close()
        self.checkpoints += 1
