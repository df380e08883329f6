"""What every command that talks to a server shares: its URL and key options, and one call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from foretell.cli.keys import local_admin_key
from foretell.errors import ForetellError

if TYPE_CHECKING:
    from foretell.client import Client

console = Console()

DEFAULT_URL = "http://127.0.0.1:8080"
Url = Annotated[str, typer.Option(envvar="FORETELL_URL", help="server to talk to")]
Key = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="FORETELL_API_KEY",
        help="API key; default: the local server's first admin key, if this user can read it",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="print the whole record as JSON")]


@contextmanager
def connected(url: str, key: str | None) -> Iterator[Client]:
    """A client of `url`; an error answer (or no answer) is printed and exits 2."""
    from foretell.client import Client

    try:
        with Client(url, token=key or local_admin_key()) as client:
            yield client
    except ForetellError as exc:
        console.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2) from None


def call(action: Callable[[Client], dict[str, Any]], url: str, key: str | None) -> dict[str, Any]:
    """`action` on a client of `url`; an error answer is printed and exits 2."""
    # Lazy: the client's httpx (~55 ms) is for the client commands, not `foretell serve`.
    from foretell.client import Client

    try:
        with Client(url, token=key or local_admin_key()) as client:
            return action(client)
    except ForetellError as exc:
        console.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2) from None
