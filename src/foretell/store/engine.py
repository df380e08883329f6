"""Opens the database: the engine, SQLite's connection settings, migrations to head.

The engine is synchronous and the store calls it from threads. Measured on 2 cores: one committed
row through aiosqlite's async adapter took 1.1 ms (each DBAPI call is a hop to its thread and
back); the same commit as one hop into a thread running the sync engine took 0.2 ms, and
64-row group commits 30 us/row against 49.

What differs per backend (SQLite, the default; PostgreSQL through psycopg 3), for whoever adds to
the store:
- URL: `postgresql://` and `postgres://` mean psycopg 3 here (`sync_url`, the one place URLs are
  normalised); SQLAlchemy before 2.1 would load psycopg2, which foretell does not install.
- Writers: SQLite has one write lock per file, taken at BEGIN IMMEDIATE (the IMMEDIATE execution
  option, read by `_on_sqlite_begin`; other databases ignore it). PostgreSQL locks rows, so the
  writers of several processes commit side by side; row claims (FOR UPDATE SKIP LOCKED) and
  LISTEN/NOTIFY exist only there. Migrations take `MIGRATION_LOCK`, a transaction-scoped advisory
  lock, so processes opening one new database together migrate it once (SQLite: IMMEDIATE).
- JSON is TEXT on both (tables.JsonText), exactly as orjson wrote it: JSONB would reorder keys,
  drop duplicate ones and refuse \u0000, and a record must read back as it was written (or, if it
  cannot, as a note: tables.read_json). TEXT on PostgreSQL refuses the NUL character, which
  orjson escapes inside JSON; free text (logs) has it replaced (tables.PlainText), on both.
- Lengths: PostgreSQL refuses a value longer than its VARCHAR(n) column (String(n)); SQLite
  stores it. What reaches a String column is validated to fit first (names 64, environments 32,
  key names 128; ids are made here), and a new column needs the same.
- Timestamps: TIMESTAMP WITH TIME ZONE (microseconds) on PostgreSQL, which answers in the
  session's time zone; ISO text on SQLite, without a zone. tables.UTCDateTime writes UTC and reads
  back aware UTC datetimes on both, so (created_at, id) cursors compare alike.
- Text order: SQLite compares code points; PostgreSQL uses the database's collation (under
  en_US.UTF-8 'B' sorts after 'a'). Listing breaks created_at ties by id, with the same collation
  in its ORDER BY and its cursor's comparison, so pages never skip or repeat on either; only the
  order of ties can differ between backends. The test server's databases use C.UTF-8.
- Durability: SQLite in WAL with synchronous=NORMAL survives the process being killed;
  PostgreSQL with fsync and synchronous_commit on (its defaults) survives an OS crash too.
  SQLite's WAL is copied back into the file by a thread of its own (store.checkpoint), never
  inside the writer's commits.
- Connections: a PostgreSQL connection is a server process: each API process holds at most 15
  (SQLAlchemy's pool: 5, plus 10 overflow; the reader has 4 threads, the writer keeps 1), and
  pings one as it is checked out (pool_pre_ping, 0.1-0.3 ms on loopback) so that a server
  restart costs no read a failure once the server is back (the writer's kept connection:
  writer.py). A connect gives up after CONNECT_TIMEOUT_S (psycopg's own default: 130 s) unless
  the URL sets connect_timeout, so an unreachable server is StoreUnavailable (unavailable.py)
  in seconds. Measured on 2 busy cores, loopback: a get by id 0.8 ms (SQLite 0.4), one
  awaited insert 0.7 ms (0.4), a fresh database's migrations 60-80 ms (25).
- Batches: the group writer's executemany is pipelined by psycopg 3 (one round trip a batch,
  not one a row): 5,000 concurrent inserts commit at 13-19k rows/s (SQLite 15k), in one
  transaction on either. Prediction rows go through the driver itself (store.raw), in the
  text and values SQLAlchemy's types would bind.
- SQL functions differ: a compiled construct per dialect where they do (predictions._Bytes:
  octet_length, which SQLite has only from 3.43).
- Not used yet: booleans, LIKE (case-insensitive for ASCII on SQLite, not on
  PostgreSQL: use ilike to mean the same on both).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as sqlalchemy_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from foretell.store import tables

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision): str(?: \| None)? = (?:"(\w+)"|None)$', re.M)

# Execution option asking SQLite for BEGIN IMMEDIATE: take the write lock up front (waiting up to
# busy_timeout for another writer) instead of failing mid-transaction. Ignored by other databases.
IMMEDIATE = {"foretell_sqlite_begin": "BEGIN IMMEDIATE"}

# WAL with synchronous=NORMAL makes a commit durable against the *process* being killed (the WAL
# write has reached the OS when commit returns), which is what foretell promises; only a power
# loss or OS crash can lose the last commits, which synchronous=FULL would add an fsync to prevent.
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
_WAL_TRIES = 50
# A URL naming no driver gets the one foretell installs (SQLAlchemy 2.0's default for postgresql
# is psycopg2); async drivers named in older configs map to the sync one of the same database.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",  # Heroku's and libpq's spelling; SQLAlchemy refuses it
    "postgresql+asyncpg": "postgresql+psycopg",
    "sqlite+aiosqlite": "sqlite+pysqlite",
}
# How long a PostgreSQL connect may take (libpq's connect_timeout, at least 2): a refused one
# fails at once anyway; this bounds one to a host that does not answer at all.
CONNECT_TIMEOUT_S = 3
# Any fixed number, the same in every foretell process: PostgreSQL advisory locks are named by one.
MIGRATION_LOCK = 0x666F7265  # "fore"


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN skips DDL, leaving migrations half-applied on a crash;
    # turning it off and emitting BEGIN ourselves (below) makes every transaction real.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch to WAL, waiting out other first openers of a new file.

    The switch takes a shared lock and then needs an exclusive one; SQLite answers BUSY at once
    rather than invoke the busy handler there (it could deadlock), so several processes opening a
    new database together fail without this. WAL is persistent: later opens never race."""
    for attempt in range(_WAL_TRIES):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:
            if "database is locked" not in str(exc) or attempt == _WAL_TRIES - 1:
                raise
            time.sleep(0.05)  # only on a brand-new file's first opens


def _on_sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get("foretell_sqlite_begin", "BEGIN"))


def _ensure_parent_dir(url: str) -> None:
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # a URI filename; leave it to SQLite
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def sync_url(url: str) -> URL:
    """`url` with the driver foretell uses: psycopg 3 for `postgresql://` or `postgres://`, and
    a sync driver for an async one (sqlite+aiosqlite, postgresql+asyncpg)."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    return parsed if driver is None else parsed.set(drivername=driver)


def _postgres_engine(parsed: URL) -> Engine:
    if parsed.get_driver_name() == "psycopg":
        try:
            import psycopg  # noqa: F401  (only to name the fix when it is missing)
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                f"the database {parsed.render_as_string(hide_password=True)} needs psycopg 3, "
                "which is not installed: pip install 'foretell[postgres]'",
                name="psycopg",
            ) from None
        if "connect_timeout" not in parsed.query:
            connect_args = {"connect_timeout": CONNECT_TIMEOUT_S}
            return sqlalchemy_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    return sqlalchemy_engine(parsed, pool_pre_ping=True)


def create_engine(url: str) -> Engine:
    """An engine for `url`, safe to use from several threads; SQLite is set up for WAL."""
    _ensure_parent_dir(url)
    parsed = sync_url(url)
    if parsed.get_backend_name() == "postgresql":
        tables.with_postgresql()  # the partial indexes' WHERE there (not loaded for SQLite)
        return _postgres_engine(parsed)
    if parsed.get_backend_name() != "sqlite":
        return sqlalchemy_engine(parsed, pool_pre_ping=True)
    # The pool hands a connection to one thread at a time, so sqlite3's same-thread check
    # only gets in the way.
    engine = sqlalchemy_engine(parsed, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, no alembic.ini involved.

    With `connection`, env.py migrates through it inside the caller's transaction.
    """
    from alembic.config import Config  # only to migrate: see _at_head

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def head_revision() -> str | None:
    """The newest migration's revision, read from the scripts' `revision` lines (None if they
    do not form one chain): Alembic and its templates (mako, pygments) took about a tenth of
    `foretell serve`'s start to import, to find a database already at head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        for key, value in _REVISION.findall(script.read_text()):
            (revisions if key == "revision" else parents).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    head = head_revision()
    if head is None:
        return False
    with engine.connect() as conn:
        try:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except DBAPIError:  # no such table: a new database
            return False
    return [row[0] for row in rows] == [head]


def lock_for_migration(connection: Connection) -> None:
    """Inside the connection's transaction, wait for any other process migrating this database.

    SQLite's BEGIN IMMEDIATE (IMMEDIATE) already did; PostgreSQL needs an advisory lock, held
    until the transaction ends: DDL there is transactional, so the next one in finds the schema
    at head and runs nothing."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    One transaction holding the write lock, so concurrent openers of a fresh database take turns.
    """
    if _at_head(engine):  # a schema never moves back: nothing to lock for
        return
    with engine.connect() as conn:
        immediate = conn.execution_options(**IMMEDIATE)
        with immediate.begin():
            lock_for_migration(immediate)
            _upgrade(immediate)
