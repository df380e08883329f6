"""Store opening: parent folders, SQLite settings, idempotent migrations, schema in sync."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from _databases import execute
from foretell.store import PredictionStore
from foretell.store.engine import MIGRATIONS, alembic_config, create_engine, head_revision
from foretell.store.tables import metadata

MIGRATION_LOG = "alembic.runtime.migration"

HEAD = "0011"  # the newest migration; every open must end there


def _open_and_close(db_url: str) -> None:
    async def scenario() -> None:
        store = await PredictionStore.open(db_url)
        await store.close()

    asyncio.run(scenario())


def _query(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _version(db_url: str) -> list[tuple[object, ...]]:
    return execute(db_url, "SELECT version_num FROM alembic_version")


def _tables(db_url: str) -> set[str]:
    engine = create_engine(db_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_open_creates_the_folder_and_uses_wal(db_path: Path, sqlite_url: str) -> None:
    assert not db_path.parent.exists()
    _open_and_close(sqlite_url)
    assert db_path.is_file()
    assert _query(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert _query(db_path, "SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_reopening_runs_no_migration(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=MIGRATION_LOG):
        _open_and_close(db_url)
        assert "Running upgrade" in caplog.text
        caplog.clear()
        _open_and_close(db_url)
        assert "Running upgrade" not in caplog.text
    assert _version(db_url) == [(HEAD,)]


def test_concurrent_first_opens_take_turns(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        stores = await asyncio.gather(*(PredictionStore.open(db_url) for _ in range(3)))
        for store in stores:
            await store.close()

    with caplog.at_level(logging.INFO, logger=MIGRATION_LOG):
        asyncio.run(scenario())
    assert _version(db_url) == [(HEAD,)]
    assert caplog.text.count(f"-> {HEAD},") == 1, "the newest migration ran once"


def test_migrations_create_exactly_the_tables_module(db_url: str) -> None:
    _open_and_close(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_alembic_cli_migrates_a_url_up_and_down(tmp_path: Path, db_url: str) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {MIGRATIONS}\n")
    (tmp_path / "data").mkdir()  # where db_url puts a SQLite file

    def alembic(*args: str) -> None:
        command = [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url={db_url}", *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    alembic("upgrade", "head")
    assert _version(db_url) == [(HEAD,)]
    assert _tables(db_url) >= set(metadata.tables)
    alembic("downgrade", "base")
    assert _tables(db_url) == {"alembic_version"}


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head_revision() == HEAD


OPEN_AND_LIST_ALEMBIC = """
import asyncio, sys
from foretell.store import PredictionStore

async def main() -> None:
    store = await PredictionStore.open(sys.argv[1])
    await store.close()

asyncio.run(main())
print(sorted({m.split(".")[0] for m in sys.modules} & {"alembic", "mako"}))
"""


def test_a_database_at_head_opens_without_importing_alembic(db_url: str) -> None:
    # Alembic and mako were about a tenth of `foretell serve`'s start, to find nothing to do.
    def modules_after_open() -> str:
        command = [sys.executable, "-c", OPEN_AND_LIST_ALEMBIC, db_url]
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
        return done.stdout.strip()

    assert modules_after_open() == "['alembic', 'mako']"  # a new database is migrated
    assert _version(db_url) == [(HEAD,)]
    assert modules_after_open() == "[]"


def test_a_database_behind_head_is_migrated_to_it(db_url: str) -> None:
    _open_and_close(db_url)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "-1")
    finally:
        engine.dispose()
    assert _version(db_url) != [(HEAD,)]
    _open_and_close(db_url)
    assert _version(db_url) == [(HEAD,)]
