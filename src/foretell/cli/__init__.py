"""The `foretell` command line (typer + rich)."""
