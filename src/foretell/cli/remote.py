"""What every command that talks to a server shares: its URL and key options, and one call."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from foretell.cli.target import Target, TargetError, resolve
from foretell.errors import ForetellError, Unauthenticated

if TYPE_CHECKING:
    from foretell.client import Client

__all__ = ["AsJson", "Key", "Url", "call", "connected", "http_call", "target"]

console = Console()
stderr = Console(stderr=True)

Url = Annotated[
    str | None,
    typer.Option(
        envvar="FORETELL_URL",
        help="server to talk to; default: the profile's url (foretell --profile, "
        "config.toml), else http://127.0.0.1:8080",
        show_default=False,
    ),
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="FORETELL_API_KEY",
        help="API key; default: the profile's key, else (for a server on this machine) the "
        "admin key in the data directory that server uses, if this user can read it",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="print the whole record as JSON")]


def _given(value: str | None, flag: str, variable: str) -> tuple[str | None, str]:
    """`value` (None: neither the option nor its variable was given) and which gave it: the
    flag wins over the variable, so a value the variable does not hold is the flag's."""
    if value is None:
        return None, ""
    return value, variable if os.environ.get(variable) == value else flag


def target(url: str | None, key: str | None) -> Target:
    """Where the command goes and with which key (see cli.target); exits 2 on a bad profile."""
    try:
        where = resolve(
            *_given(url, "--url", "FORETELL_URL"), *_given(key, "--key", "FORETELL_API_KEY")
        )
    except TargetError as exc:
        stderr.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if where.key is not None and where.guessed:
        # Not silently: a key from whatever folder the shell is in may not be this server's.
        stderr.print(
            f"[dim]using the admin key {where.key_source}[/]", highlight=False, soft_wrap=True
        )
    return where


def refused(exc: ForetellError, where: Target) -> None:
    """Print why the server said no; a 401 names the URL and the key's source."""
    status = getattr(exc, "status", None)
    if status == 401 or isinstance(exc, Unauthenticated):
        stderr.print(
            f"[red]error:[/] the server at {where.url} refused the key from "
            f"{where.key_source} ({exc.message}); pass --key or set FORETELL_API_KEY",
            highlight=False,
            soft_wrap=True,
        )
    else:
        stderr.print(f"[red]error:[/] {exc.message}", highlight=False, soft_wrap=True)


@contextmanager
def connected(url: str | None, key: str | None) -> Iterator[Client]:
    """A client of the target; an error answer (or no answer) is printed and exits 2."""
    # Lazy: the client's httpx (~55 ms) is for the client commands, not `foretell serve`.
    from foretell.client import Client

    where = target(url, key)
    try:
        with Client(where.url, token=where.key) as client:
            yield client
    except ForetellError as exc:
        refused(exc, where)
        raise typer.Exit(2) from None


def http_call(
    where: Target, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One request the client has no method for (the keys routes); an error answer (or no
    answer) is printed as `connected` prints it and exits 2."""
    import httpx

    from foretell.client import ApiError, Unreachable

    headers = {"Authorization": f"Bearer {where.key}"} if where.key else {}
    try:
        with httpx.Client(base_url=where.url, headers=headers, timeout=90.0) as http:
            answer = http.request(method, path, json=body)
    except httpx.TransportError as exc:
        refused(Unreachable(where.url, exc), where)
        raise typer.Exit(2) from None
    try:
        parsed = answer.json()
    except ValueError:
        parsed = {"detail": answer.text}
    if answer.status_code >= 400:
        detail = parsed.get("detail", parsed) if isinstance(parsed, dict) else parsed
        refused(ApiError(answer.status_code, detail), where)
        raise typer.Exit(2)
    result: dict[str, Any] = parsed
    return result


def call(
    action: Callable[[Client], dict[str, Any]], url: str | None, key: str | None
) -> dict[str, Any]:
    """`action` on a client of the target; an error answer is printed and exits 2."""
    with connected(url, key) as client:
        return action(client)
