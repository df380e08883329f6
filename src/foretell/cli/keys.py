"""`foretell keys create | list | revoke`: API keys, through a server's HTTP API (/v1/keys, as an
admin key) when a URL or profile is given, else straight in the local server's database.

The database way works whether or not the server runs (a first key can be made before it ever
starts), and a running server sees a revocation within half a second. Its modules (the store,
SQLAlchemy) are imported inside the commands: `foretell --help` does not pay for them."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from foretell.cli.remote import Key, http_call, target
from foretell.cli.target import chosen
from foretell.cli.target import is_loopback as is_loopback
from foretell.errors import ForetellError

if TYPE_CHECKING:
    from foretell.auth import KeyManager
    from foretell.domain.access import ApiKey

app = typer.Typer(
    help="Make, list and revoke API keys: over HTTP with --url, FORETELL_URL or a profile, "
    "else in the local server's database."
)
console = Console()
T = TypeVar("T")

DataDir = Annotated[
    Path, typer.Option(envvar="FORETELL_DATA_DIR", help="the server's data directory")
]
Db = Annotated[
    str | None, typer.Option(envvar="FORETELL_DB", help="SQLAlchemy URL; default SQLite")
]
RemoteUrl = Annotated[
    str | None,
    typer.Option(
        envvar="FORETELL_URL",
        help="manage the keys of the server at this URL through its API (an admin key); "
        "default: the local database",
        show_default=False,
    ),
]
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScopeName(StrEnum):
    """domain.access.Scope's values, without importing the domain for `--help`."""

    read = "read"
    predict = "predict"
    deploy = "deploy"
    admin = "admin"


def _remote(url: str | None) -> bool:
    """Whether the command goes through a server's API: a URL or a profile was given."""
    return url is not None or bool(chosen.profile or os.environ.get("FORETELL_PROFILE"))


def _parse_expiry(value: str | None) -> timedelta | None:
    if value is None:
        return None
    from foretell.auth.keys import MAX_LIFETIME_DAYS, MAX_LIFETIME_S

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
    import asyncio

    from foretell.auth import KeyManager
    from foretell.config import Settings
    from foretell.store import PredictionStore

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
    """A key as GET /v1/keys lists it, so that both ways print alike."""
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
    scope: Annotated[
        ScopeName, typer.Option(help="read | predict | deploy | admin")
    ] = ScopeName.predict,
    name: Annotated[str, typer.Option(help="what it is for, e.g. ci")] = "",
    expires: Annotated[
        str | None, typer.Option(help="lifetime such as 30d or 12h; default: never expires")
    ] = None,
    # Their limits are the key manager's (auth.keys), checked there or by the server.
    rate: Annotated[float | None, typer.Option(help="requests per second it may make")] = None,
    burst: Annotated[int | None, typer.Option(help="requests it may make at once")] = None,
    data_dir: DataDir = Path(".foretell"),
    db: Db = None,
    url: RemoteUrl = None,
    key: Key = None,
) -> None:
    """Make a key and print it: it is shown this once, and only a digest of it is stored."""
    lifetime = _parse_expiry(expires)
    if _remote(url):
        body: dict[str, Any] = {"owner": owner, "scope": scope.value, "name": name}
        if lifetime is not None:
            body["expires_in_s"] = lifetime.total_seconds()
        body |= {k: v for k, v in (("rate_per_s", rate), ("burst", burst)) if v is not None}
        made = http_call(target(url, key), "POST", "/v1/keys", body)
        secret, record = made.pop("key"), made
    else:
        from foretell.domain.access import Scope

        new = _with_keys(
            data_dir,
            db,
            lambda keys: keys.create(
                owner=owner,
                scope=Scope(scope.value),
                name=name,
                expires_in=lifetime,
                rate_per_s=rate,
                burst=burst,
            ),
        )
        secret, record = new.key, _as_dict(new.record)
    typer.echo(secret)
    Console(stderr=True).print(
        f"key {record['id']} ({record['prefix']}…) for owner '{owner}', scope "
        f"{scope.value}: store it now, it cannot be shown again"
    )


@app.command("list")
def list_keys(
    data_dir: DataDir = Path(".foretell"),
    db: Db = None,
    as_json: Annotated[bool, typer.Option("--json", help="as JSON")] = False,
    url: RemoteUrl = None,
    key: Key = None,
) -> None:
    """Every key: prefix, name, owner, scope, when made, last used and when it expires."""
    if _remote(url):
        keys = http_call(target(url, key), "GET", "/v1/keys")["results"]
    else:
        keys = [_as_dict(k) for k in _with_keys(data_dir, db, lambda k: k.list())]
    if as_json:
        console.print_json(json.dumps({"results": keys}))
        return
    table = Table("id", "prefix", "name", "owner", "scope", "created", "last used", "expires")
    for k in keys:
        expires = "revoked" if k["revoked_at"] else (k["expires_at"] or "never")
        table.add_row(
            k["id"],
            k["prefix"],
            k["name"],
            k["owner"],
            k["scope"],
            _when(k["created_at"]),
            _when(k["last_used_at"] or "-"),
            _when(expires),
        )
    console.print(table)


def _when(iso: str) -> str:
    """An ISO timestamp to the second, as a table shows it."""
    return iso.replace("T", " ")[:19]


@app.command()
def revoke(
    key_id: Annotated[
        str,
        typer.Argument(metavar="KEY", help="the key's id or prefix (never the key itself)"),
    ],
    data_dir: DataDir = Path(".foretell"),
    db: Db = None,
    url: RemoteUrl = None,
    key: Key = None,
) -> None:
    """Revoke a key; a running server refuses it within half a second (at once, over HTTP)."""
    if _remote(url):
        where = target(url, key)
        revoked = http_call(where, "DELETE", f"/v1/keys/{quote(key_id, safe='')}")
    else:
        revoked = _as_dict(_with_keys(data_dir, db, lambda keys: keys.revoke(key_id)))
    console.print(f"revoked {revoked['id']} ({revoked['prefix']}…, owner '{revoked['owner']}')")
