"""`foretell models get | load | unload | scale | rescan`: a model's versions and their lifecycle
(`list` and `environments` are in main)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from foretell.cli.remote import AsJson, Key, Url, call, console
from foretell.domain import ModelRef

app = typer.Typer(help="Inspect the models a server serves; load, unload, scale and rescan them.")

Version = Annotated[str, typer.Argument(help="owner/name:version, e.g. demo/iris:1")]
Replicas = Annotated[
    int | None, typer.Option(min=1, max=64, help="exactly N replicas (min = max = N)")
]
Least = Annotated[int | None, typer.Option("--min", min=0, max=64, help="replicas kept running")]
Most = Annotated[int | None, typer.Option("--max", min=1, max=64, help="replicas at most")]
Idle = Annotated[
    float | None, typer.Option("--idle", min=0.001, help="seconds idle before a replica stops")
]
Lines = Annotated[int, typer.Option(min=0, help="lines of each version's logs to show")]


def _version(text: str) -> ModelRef:
    try:
        ref = ModelRef.parse(text)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if ref.version is None:
        console.print(f"[red]error:[/] name the version: {ref.slug}:1, {ref.slug}:2, …")
        raise typer.Exit(2)
    return ref


def _replicas(
    replicas: int | None, least: int | None, most: int | None, idle: float | None
) -> int | dict[str, Any] | None:
    ranged = {"min": least, "max": most, "idle_s": idle}
    given = {k: v for k, v in ranged.items() if v is not None}
    if replicas is not None and given:
        console.print("[red]error:[/] give --replicas or --min/--max/--idle, not both")
        raise typer.Exit(2)
    return replicas if replicas is not None else (given or None)


def _change(ref: ModelRef, url: str | None, key: str | None, as_json: bool, **change: Any) -> None:
    number = ref.version or 0  # _version made sure there is one
    record = call(lambda c: c.change_deployment(ref.owner, ref.name, number, **change), url, key)
    if as_json:
        console.print_json(json.dumps(record))
    else:
        console.print(f"{ref}: {_summary(record)}")


@app.command()
def load(
    model: Version,
    replicas: Replicas = None,
    least: Least = None,
    most: Most = None,
    idle: Idle = None,
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Start a stopped (or failed) version, optionally with its replicas; a deploy key."""
    wanted = _replicas(replicas, least, most, idle)
    _change(_version(model), url, key, as_json, state="started", replicas=wanted)


@app.command()
def unload(model: Version, url: Url = None, key: Key = None, as_json: AsJson = False) -> None:
    """Stop a version once its work in flight is done; it is "not ready" until loaded."""
    _change(_version(model), url, key, as_json, state="stopped")


@app.command()
def scale(
    model: Version,
    replicas: Replicas = None,
    least: Least = None,
    most: Most = None,
    idle: Idle = None,
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Set a version's replicas: --replicas N, or --min/--max/--idle (min 0: none idle)."""
    wanted = _replicas(replicas, least, most, idle)
    if wanted is None:
        console.print("[red]error:[/] give --replicas N, or --min/--max/--idle")
        raise typer.Exit(2)
    _change(_version(model), url, key, as_json, replicas=wanted)


@app.command()
def rescan(url: Url = None, key: Key = None, as_json: AsJson = False) -> None:
    """Read the model repository again: versions added on disk start, removed ones stop."""
    found = call(lambda c: c.rescan(), url, key)
    if as_json:
        console.print_json(json.dumps(found))
        return
    if not found["added"] and not found["removed"]:
        console.print("no change")
    for ref in found["added"]:
        console.print(f"added {ref}")
    for ref in found["removed"]:
        console.print(f"removed {ref}")


@app.command()
def get(
    model: Annotated[str, typer.Argument(help="owner/name")],
    lines: Lines = 10,
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """A model's versions: status, replicas, timestamps and the tail of their logs."""
    owner, _, name = model.partition("/")
    record = call(lambda c: c.get_model(owner, name), url, key)
    if as_json:
        console.print_json(json.dumps(record))
        return
    latest = record.get("latest_version")
    console.print(f"[bold]{record['owner']}/{record['name']}[/] (latest ready: {latest or '-'})")
    table = Table("version", "status", "replicas", "created_at", "ready_at", "stopped_at")
    for v in record["versions"]:
        d = v["deployment"]
        table.add_row(
            str(v["version_number"]),
            v["status"],
            _replica_text(d.get("replicas")),
            d.get("created_at") or "-",
            d.get("ready_at") or "-",
            d.get("stopped_at") or "-",
        )
    console.print(table)
    for v in record["versions"]:
        d = v["deployment"]
        if d.get("error"):
            console.print(f"version {v['version_number']} error: {d['error']}", markup=False)
        for label, text in (("build log", d.get("build_log")), ("logs", d.get("logs"))):
            tail = _tail(text or "", lines)
            if tail:
                console.print(f"[bold]version {v['version_number']} {label}[/] (last lines):")
                console.print(tail, markup=False, highlight=False)


def _summary(record: dict[str, Any]) -> str:
    d = record["deployment"]
    text = f"{record['status']}, replicas {_replica_text(d.get('replicas'))}"
    return f"{text}: {d['error']}" if d.get("error") else text


def _replica_text(replicas: Any) -> str:
    if not isinstance(replicas, dict):
        return "-" if replicas is None else str(replicas)
    least, most = replicas.get("min"), replicas.get("max")
    bounds = str(least) if least == most else f"{least}..{most}"
    return f"{bounds} ({replicas.get('running', 0)} running)"


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:]) if lines else ""
