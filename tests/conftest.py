"""Fixtures for every test folder: the session's PostgreSQL server and the two store backends.

`db_url` runs a test once per backend: `test_x[sqlite]` on a new SQLite file under tmp_path
(tmp_path/data/foretell.db), `test_x[postgresql]` on a new database of the session's PostgreSQL
server, marked `postgresql` (`-m 'not postgresql'` leaves those out where no server can be had).
`postgres_url` is a new database for one test; `postgres` is the server itself, whose
`database()` gives a module- or session-scoped fixture its own (see tests/_postgres.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _postgres import Postgres

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The session's PostgreSQL server, started on first use (about 2 s) and stopped at the end."""
    server = Postgres.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: Postgres) -> Iterator[str]:
    """A new, empty database on the session's server (`postgresql://…`), dropped afterwards."""
    url = postgres.database()
    yield url
    postgres.drop_later(url)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store on each backend in turn: SQLite's file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'foretell.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
