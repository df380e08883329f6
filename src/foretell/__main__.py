"""`python -m foretell` runs the CLI."""

from foretell.cli.main import app

app()
