"""`foretell push DIR owner/name`: pack a model folder, send it, follow its build and deploy."""

from __future__ import annotations

import json
import os
import shlex
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from foretell.cli.remote import Key, Url, call, target

if TYPE_CHECKING:
    from foretell.client import Client

console = Console()

MANIFEST_FILE = "foretell.yaml"
SKIPPED = frozenset({".git", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})
POLL_S = 0.5
ENDED = ("ready", "failed", "stopped")


def push(
    folder: Annotated[
        Path, typer.Argument(help="the model's folder, with its foretell.yaml at the top")
    ],
    model: Annotated[str, typer.Argument(help="owner/name; its next version is made")],
    url: Url = None,
    key: Key = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="seconds to follow the build and deploy")
    ] = 1800.0,
) -> None:
    """Push a model folder as the next version of owner/name; follow its build and deploy."""
    owner, slash, name = model.partition("/")
    if not slash or not owner or not name or "/" in name:
        console.print(f"[red]error:[/] '{model}' is not owner/name")
        raise typer.Exit(2)
    if not (folder / MANIFEST_FILE).is_file():
        console.print(f"[red]error:[/] {folder} has no {MANIFEST_FILE} at its top")
        raise typer.Exit(2)
    with packed(folder) as archive:
        size = archive.stat().st_size
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(f"uploading {folder}", total=size)

            def sent(done: int, _: int) -> None:
                progress.update(task, completed=done)

            record = call(lambda c: c.push(owner, name, archive, on_sent=sent), url, key)
    number = record["version_number"]
    console.print(f"uploaded {size} bytes: {owner}/{name} version {number}")
    final = call(lambda c: follow(c, owner, name, number, record, timeout), url, key)
    status = final["status"]
    if status == "ready":
        console.print(f"[green]ready[/]: {owner}/{name}:{number}")
        server = target(url, key).url
        print(first_curl(server, f"{owner}/{name}:{number}", final.get("input_schema")), flush=True)
        return
    error = final.get("deployment", {}).get("error") or ""
    # Its log lines were printed above as they came: the error closes them.
    console.print(f"[red]{status}[/]: {owner}/{name}:{number} {error}", highlight=False)
    where = f"/v1/models/{owner}/{name}/versions/{number}"
    console.print(f"its whole record and log: GET {where}", highlight=False)
    raise typer.Exit(1)


def follow(
    client: Client, owner: str, name: str, number: int, record: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Poll the version until it is ready, failed or stopped, printing each status change and
    each log line as it appears; the last record (its status 'still …' past `timeout`)."""
    shown: dict[str, str] = {}
    status = record["status"]
    console.print(f"status: {status}", highlight=False)
    deadline = time.monotonic() + timeout
    while True:
        _print_new(record, shown)  # what was logged before the status it changed to
        if record["status"] != status:
            status = record["status"]
            console.print(f"status: {status}", highlight=False)
        if status in ENDED:
            return record
        if time.monotonic() > deadline:
            return {**record, "status": f"still {status} after {timeout:g} s"}
        time.sleep(POLL_S)
        record = client.get_version(owner, name, number)


def _print_new(record: dict[str, Any], shown: dict[str, str]) -> None:
    """The lines of the record's logs not in `shown` (each log's text printed so far)."""
    for label, text in _logs(record):
        before = shown.get(label, "")
        new = text[len(before) :] if text.startswith(before) else text
        for line in new.rstrip("\n").splitlines():
            console.print(f"  {label}| {line}", markup=False, highlight=False)
        shown[label] = text


def _logs(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The version's build log and deployment log, wherever the record keeps them."""
    found = []
    deployment = record.get("deployment") or {}
    for label, field in (("build", "build_log"), ("deploy", "logs")):
        text = record.get(field) or deployment.get(field)
        if isinstance(text, str) and text:
            found.append((label, text))
    return found


@contextmanager
def packed(folder: Path) -> Iterator[Path]:
    """`folder` as a temporary tar.gz, its contents at the top, without version control,
    caches and virtual environments; links are followed (the server takes no links)."""
    fd, name = tempfile.mkstemp(prefix="foretell-push-", suffix=".tar.gz")
    os.close(fd)
    archive = Path(name)
    try:
        with tarfile.open(archive, "w:gz", dereference=True) as tar:
            for path in _walk(folder):
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        yield archive
    finally:
        archive.unlink(missing_ok=True)


def _walk(folder: Path) -> Iterator[Path]:
    for top, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        base = Path(top)
        for d in dirs:
            yield base / d
        for f in sorted(files):
            yield base / f


def first_curl(url: str, model: str, schema: dict[str, Any] | None) -> str:
    """A native prediction of `model` with an example input, the key from the environment."""
    body = json.dumps({"model": model, "input": example(schema)})
    return (
        f"curl -s -X POST {url.rstrip('/')}/v1/predictions "
        '-H "Authorization: Bearer $FORETELL_API_KEY" '
        "-H 'Prefer: wait=60' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)}"
    )


def example(schema: dict[str, Any] | None) -> dict[str, Any]:
    """An input that an object's JSON Schema accepts, as far as a guess can: its required
    properties, each its default, first example or enum value, or a value of its type."""
    if not schema:
        return {}
    required = set(schema.get("required", ()))
    properties: dict[str, Any] = schema.get("properties", {})
    return {k: _value(p) for k, p in properties.items() if k in required or "default" not in p}


def _value(prop: dict[str, Any]) -> Any:
    if "default" in prop:
        return prop["default"]
    if prop.get("examples"):
        return prop["examples"][0]
    if prop.get("enum"):
        return prop["enum"][0]
    for alternatives in ("anyOf", "oneOf"):
        if prop.get(alternatives):
            return _value(prop[alternatives][0])
    kind = prop.get("type")
    if kind == "string":
        return "https://example.com/input" if prop.get("format") == "uri" else "hello"
    if kind == "integer":
        return int(prop.get("minimum", 1))
    if kind == "number":
        return float(prop.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value(prop.get("items", {}))] * max(1, int(prop.get("minItems", 1)))
    if kind == "object":
        return example(prop)
    return None
