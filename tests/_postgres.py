"""A real PostgreSQL server for the tests: started once a session by scripts/postgres.sh, with
a fresh database for each test that asks.

Plain helpers, not fixtures (those are in tests/conftest.py): `from _postgres import Postgres`
works from tests/unit and tests/integration alike, since tests/ is on sys.path under pytest's
rootdir import mode (tests/conftest.py is there and tests/ has no __init__.py).

FORETELL_TEST_POSTGRES=postgresql://user@host:port/db uses a server someone else runs (a CI
service, say) instead: the user must be allowed to CREATE DATABASE. Every database made here is
named foretell_test_*, and only those are dropped.
"""

from __future__ import annotations

import itertools
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "postgres.sh"
EXTERNAL = "FORETELL_TEST_POSTGRES"
START_TIMEOUT_S = 120.0  # initdb and a start take 2 s on an idle 2-core machine
STOP_TIMEOUT_S = 90.0
# Stops the server and removes its folder once its stdin closes: when the session stops it, or
# when the session dies without tearing down (killed, timed out), since the pipe's write end
# closes with it. Its own session, so a Ctrl-C at the terminal leaves it to do its job.
_WATCHDOG = f"""
import shutil, subprocess, sys
sys.stdin.buffer.read()
subprocess.run([sys.argv[1], "stop", sys.argv[2]], capture_output=True, timeout={STOP_TIMEOUT_S})
shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


class Postgres:
    """A server this session may create databases on; `database()` makes one."""

    def __init__(
        self, url: str, folder: Path | None = None, watchdog: subprocess.Popen[bytes] | None = None
    ) -> None:
        self.url = url  # the server's own database, as a superuser (or a CREATEDB user)
        self.folder = folder  # where scripts/postgres.sh keeps the cluster; None: not ours
        self._watchdog = watchdog  # stops our server when told to, or when we die
        run = f"{os.getpid()}_{secrets.token_hex(3)}"  # unique on a server others share too
        self._names = (f"foretell_test_{run}_{n}" for n in itertools.count())
        self._made: list[str] = []
        self._drops: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._dropper: threading.Thread | None = None

    @classmethod
    def start(cls) -> Postgres:
        """The server in $FORETELL_TEST_POSTGRES, or a new one in a temp folder (from the
        binaries `scripts/postgres.sh install` puts in place; make test and make unit run it)."""
        if external := os.environ.get(EXTERNAL):
            return cls(_libpq(external))
        return cls.own()

    @classmethod
    def own(cls) -> Postgres:
        """A new server in a temp folder, whatever $FORETELL_TEST_POSTGRES says: for a test that
        stops it and starts it again (`halt`, `resume`), which no other test may share."""
        # Not under pytest's tmp dirs: those are closed to other users (the server runs as
        # `postgres` when the tests run as root).
        folder = Path(tempfile.mkdtemp(prefix="foretell-postgres-"))
        watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, SCRIPT, folder],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        server = cls("", folder, watchdog)
        try:
            started = subprocess.run(
                [SCRIPT, "start", folder],
                check=True,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S,
            )
        except subprocess.CalledProcessError as exc:
            server.stop()
            raise RuntimeError(
                f"could not start a PostgreSQL server for the tests ({SCRIPT.name} said: "
                f"{exc.stderr.strip()}); `scripts/postgres.sh install` installs one, or set "
                f"{EXTERNAL} to a server's URL, or leave these tests out with -m 'not postgresql'"
            ) from None
        server.url = started.stdout.strip()
        return server

    def halt(self) -> None:
        """Stop our server (fast shutdown: its sessions are ended), keeping its cluster."""
        self._script("stop")

    def resume(self) -> None:
        """Start our halted server again, on the same port: what a database restart looks like
        to a client that keeps the URL."""
        self._script("resume")

    def _script(self, command: str) -> None:
        assert self.folder is not None, "not our server: halt and resume need Postgres.own()"
        subprocess.run(
            [SCRIPT, command, self.folder],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )

    def stop(self) -> None:
        """Stop the server (if it is ours) and remove its folder; else drop our databases."""
        if self._watchdog is not None:
            assert self._watchdog.stdin is not None
            self._watchdog.stdin.close()
            self._watchdog.wait(STOP_TIMEOUT_S)
            return
        self._drops.put(None)
        if self._dropper is not None:
            self._dropper.join(60)
        self._drop_all(self._made)

    def database(self, *, template: str = "template0") -> str:
        """A new, empty database (a copy of `template`): its SQLAlchemy URL, plain
        `postgresql://` as a user would type it (foretell picks psycopg itself)."""
        name = next(self._names)
        with psycopg.connect(self.url, autocommit=True) as conn:
            # WAL_LOG (PostgreSQL 15's default) copies without the two checkpoints of FILE_COPY:
            # 0.15 s against 0.4 s here.
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._made.append(name)
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop_later(self, url: str) -> None:
        """Drop the database `url` names in the background (a drop takes up to 0.4 s, and a
        test need not wait for it); a session's few hundred would otherwise fill /tmp."""
        name = make_url(url).database
        assert name is not None, url
        assert name.startswith("foretell_test_"), url
        if self._dropper is None:
            self._dropper = threading.Thread(target=self._drop_queued, daemon=True)
            self._dropper.start()
        self._drops.put(name)

    def _drop_queued(self) -> None:
        while (name := self._drops.get()) is not None:
            self._drop_all([name])

    def _drop_all(self, names: list[str]) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                for name in names:
                    # FORCE: a test's process killed mid-run may leave a session behind briefly.
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass  # the server is going away with its folder anyway


def _libpq(url: str) -> str:
    """`url` as libpq reads it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
