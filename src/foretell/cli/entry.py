"""The `foretell` command: the CLI, imported with the cyclic garbage collector paused.

Importing the server (SQLAlchemy, FastAPI, pydantic models, every dialect's routes) allocates
hundreds of thousands of objects that all stay alive, and the collector walked them again and
again for nothing: paused, the import took 15% less CPU (1.71 s against 2.02 s, 9 alternating
runs on 2 busy cores), most of `foretell serve`'s cold start. It is paused here, not in
`cli.main`, so that a program or test importing `cli.main` keeps its collector as it was.
"""

from __future__ import annotations

import gc


def main() -> None:
    """Run the CLI (what `foretell` and `python -m foretell.cli` call)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        from foretell.cli.main import app
    finally:
        if enabled:
            gc.enable()
    app()
