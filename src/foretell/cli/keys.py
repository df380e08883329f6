"""`foretell keys create | list | revoke`: API keys, straight in the server's database.

They work whether or not the server runs (a first key can be made before it ever starts), and
a running server sees a revocation within half a second."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from foretell.auth import KeyManager
from foretell.auth.keys import (
    ADMIN_KEY_FILE,
    MAX_BURST,
    MAX_LIFETIME_DAYS,
    MAX_LIFETIME_S,
    MAX_RATE_PER_S,
    MIN_RATE_PER_S,
)
from foretell.config import Settings
from foretell.domain.access import ApiKey, Scope
from foretell.errors import ForetellError
from foretell.store import PredictionStore

app = typer.Typer(help="Make, list and revoke API keys (in the server's database).")
console = Console()
T = TypeVar("T")

DataDir = Annotated[
    Path, typer.Option(envvar="FORETELL_DATA_DIR", help="the server's data directory")
]
Db = Annotated[
    str | None, typer.Option(envvar="FORETELL_DB", help="SQLAlchemy URL; default SQLite")
]
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def local_admin_key() -> str | None:
    """The first admin key of a server using this user's data dir, if it can be read: so that
    `make run` and then `foretell predict` just work on one machine."""
    path = Path(os.environ.get("FORETELL_DATA_DIR", ".foretell")) / ADMIN_KEY_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _parse_expiry(value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if not match or int(match[1]) == 0:
        raise typer.BadParameter(f"'{value}' is not a duration such as 30d, 12h, 45m or 90s")
    seconds = int(match[1]) * _UNIT_S[match[2]]
    if seconds > MAX_LIFETIME_S:  # checked before timedelta, which overflows on its own
        raise typer.BadParameter(
            f"'{value}' is more than the limit of {MAX_LIFETIME_DAYS}d; "
            "leave --expires out for a key that never expires",
            param_hint="'--expires'",
        )
    return timedelta(seconds=seconds)


def _with_keys(data_dir: Path, db: str | None, action: Callable[[KeyManager], Awaitable[T]]) -> T:
    settings = Settings(data_dir=data_dir, db=db)

    async def run() -> T:
        store = await PredictionStore.open(settings.database_url)
        try:
            return await action(KeyManager(store.keys))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except ForetellError as exc:
        console.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2) from None


def _as_dict(key: ApiKey) -> dict[str, Any]:
    times = ("created_at", "expires_at", "revoked_at", "last_used_at")
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "owner": key.owner,
        "scope": key.scope.value,
        **{t: v.isoformat() if (v := getattr(key, t)) else None for t in times},
        "rate_per_s": key.rate_per_s,
        "burst": key.burst,
    }


@app.command()
def create(
    owner: Annotated[str, typer.Option(help="whose models it runs and predictions it sees")],
    scope: Annotated[Scope, typer.Option(help="read | predict | deploy | admin")] = Scope.PREDICT,
    name: Annotated[str, typer.Option(help="what it is for, e.g. ci")] = "",
    expires: Annotated[
        str | None, typer.Option(help="lifetime such as 30d or 12h; default: never expires")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            min=MIN_RATE_PER_S, max=MAX_RATE_PER_S, help="requests per second it may make"
        ),
    ] = None,
    burst: Annotated[
        int | None, typer.Option(min=1, max=MAX_BURST, help="requests it may make at once")
    ] = None,
    data_dir: DataDir = Path(".foretell"),
    db: Db = None,
) -> None:
    """Make a key and print it: it is shown this once, and only a digest of it is stored."""
    lifetime = _parse_expiry(expires)
    made = _with_keys(
        data_dir,
        db,
        lambda keys: keys.create(
            owner=owner,
            scope=scope,
            name=name,
            expires_in=lifetime,
            rate_per_s=rate,
            burst=burst,
        ),
    )
    typer.echo(made.key)
    Console(stderr=True).print(
        f"key {made.record.id} ({made.record.prefix}…) for owner '{owner}', scope "
        f"{scope.value}: store it now, it cannot be shown again"
    )


@app.command("list")
def list_keys(
    data_dir: DataDir = Path(".foretell"),
    db: Db = None,
    as_json: Annotated[bool, typer.Option("--json", help="as JSON")] = False,
) -> None:
    """Every key: prefix, name, owner, scope, when made, last used and when it expires."""
    keys = _with_keys(data_dir, db, lambda k: k.list())
    if as_json:
        console.print_json(json.dumps({"results": [_as_dict(k) for k in keys]}))
        return
    table = Table("id", "prefix", "name", "owner", "scope", "created", "last used", "expires")
    for k in keys:
        expires = "revoked" if k.revoked_at else (k.expires_at or "never")
        table.add_row(
            k.id,
            k.prefix,
            k.name,
            k.owner,
            k.scope.value,
            str(k.created_at)[:19],
            str(k.last_used_at or "-")[:19],
            str(expires)[:19],
        )
    console.print(table)


@app.command()
def revoke(
    key: Annotated[str, typer.Argument(help="the key's id or prefix (never the key itself)")],
    data_dir: DataDir = Path(".foretell"),
    db: Db = None,
) -> None:
    """Revoke a key; a running server refuses it within half a second."""
    revoked = _with_keys(data_dir, db, lambda keys: keys.revoke(key))
    console.print(f"revoked {revoked.id} ({revoked.prefix}…, owner '{revoked.owner}')")
