"""What importing the CLI leaves out, so that `foretell serve` on SQLite starts without it: httpx
(webhooks and the client commands load it when used) and SQLAlchemy's PostgreSQL dialect."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys

import pytest
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


HELP_PROBE = """
import sys

import pytest
sys.argv = ["foretell", *ARGS]
from foretell.cli.entry import main
try:
    main()
except SystemExit:
    pass
print("LOADED:", " ".join(sorted(name for name in NAMES if name in sys.modules)))
"""
# The server and the client: `foretell --help` took 3.2 s importing them (issue 20). Checked by
# what is imported, not by a time, which a busy machine would make fail at random.
SERVER_SIDE = (
    "fastapi",
    "starlette",
    "uvicorn",
    "numpy",
    # (not pydantic: typer itself coerces a command's parameters through it)
    "pydantic_settings",
    "sqlalchemy",
    "httpx",
    "foretell.service",
    "foretell.api",
    "foretell.store",
    "foretell.config",
    "foretell.client",
)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["predict", "--help"], ["keys", "create", "--help"]],
    ids=" ".join,
)
def test_help_and_version_import_neither_the_server_nor_the_client(args: list[str]) -> None:
    probe = f"ARGS = {args!r}\nNAMES = {SERVER_SIDE!r}\n{HELP_PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "LOADED: \n" in done.stdout, done.stdout[-400:]
