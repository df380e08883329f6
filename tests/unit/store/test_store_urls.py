"""Database URLs as users type them: `postgresql://` means psycopg 3, which foretell installs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from foretell.store.engine import create_engine, sync_url


@pytest.mark.parametrize(
    ("typed", "used"),
    [
        ("postgresql://app@db.internal/foretell", "postgresql+psycopg://app@db.internal/foretell"),
        ("postgres://app:pw@db:5433/f", "postgresql+psycopg://app:***@db:5433/f"),
        ("postgresql+asyncpg://app@db/f", "postgresql+psycopg://app@db/f"),
        ("postgresql+psycopg://app@db/f", "postgresql+psycopg://app@db/f"),
        ("postgresql+psycopg2://app@db/f", "postgresql+psycopg2://app@db/f"),  # asked for by name
        ("sqlite+aiosqlite:////var/f.db", "sqlite+pysqlite:////var/f.db"),
        ("sqlite:////var/f.db", "sqlite:////var/f.db"),
    ],
)
def test_a_url_gets_the_driver_foretell_installs(typed: str, used: str) -> None:
    assert sync_url(typed).render_as_string(hide_password=True) == used


def test_a_plain_postgresql_url_opens_with_psycopg(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://")
    engine = create_engine(postgres_url)
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()


def test_without_psycopg_the_error_names_the_extra_to_install() -> None:
    # A fresh interpreter where `import psycopg` fails, as on an install without the extra.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None
        from foretell.store.engine import create_engine
        try:
            create_engine("postgresql://app:secret@db.internal/foretell")
        except ModuleNotFoundError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == (
        "the database postgresql+psycopg://app:***@db.internal/foretell needs psycopg 3, "
        "which is not installed: pip install 'foretell[postgres]'"
    )
