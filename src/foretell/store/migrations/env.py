"""Alembic environment: migrate through the caller's connection, or a URL from the alembic CLI.

`PredictionStore.open` passes a connection in `config.attributes["connection"]`. From the CLI
give a URL: `alembic -x url=sqlite:////abs/foretell.db upgrade head`, or set
`sqlalchemy.url` in the ini, or FORETELL_DB, as `foretell serve` reads it.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from foretell.store.engine import IMMEDIATE, create_engine, lock_for_migration
from foretell.store.tables import with_postgresql

config = context.config
# The schema as PostgreSQL sees it too (its partial indexes' WHERE), whichever database this is.
metadata = with_postgresql()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url") or os.environ.get("FORETELL_DB")
    if not url:
        raise SystemExit("no database URL: pass -x url=..., set sqlalchemy.url or FORETELL_DB")
    return url


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite can only ALTER by copying the table, which batch mode generates.
    # transactional_ddl: our SQLite engine emits BEGIN itself, so DDL is inside the transaction.
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_from_url(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            immediate = conn.execution_options(**IMMEDIATE)
            with immediate.begin():
                lock_for_migration(immediate)
                _run(immediate)
    finally:
        engine.dispose()


def _main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if config.config_file_name is not None and config.file_config.has_section("formatters"):
        fileConfig(config.config_file_name)
    if context.is_offline_mode():
        context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    _run_from_url(_url())


_main()
