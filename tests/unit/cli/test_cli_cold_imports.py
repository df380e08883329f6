"""What importing the CLI leaves out, so that `foretell serve` on SQLite starts without it: httpx
(webhooks and the client commands load it when used) and SQLAlchemy's PostgreSQL dialect."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import foretell.cli.main
print(" ".join(sorted(name for name in NAMES if name in sys.modules)))
"""
NAMES = ("httpx", "httpcore", "sqlalchemy.dialects.postgresql", "foretell.client.client")


def test_importing_the_cli_loads_neither_httpx_nor_the_postgresql_dialect() -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"NAMES = {NAMES!r}\n{PROBE}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == ""
