"""`foretell serve | predict | push | models | predictions | keys | webhooks`: what a user types.

The server (FastAPI, uvicorn, the store, pydantic's settings) is imported inside `serve`, and the
client inside the client commands: `foretell --help` imports neither (tests/unit/cli)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from foretell.cli.inputs import parse_inputs
from foretell.cli.keys import app as keys_app
from foretell.cli.models import app as models_app
from foretell.cli.push import push
from foretell.cli.remote import AsJson, Key, Url, connected
from foretell.cli.remote import call as _call
from foretell.cli.streams import print_events
from foretell.cli.target import chosen, is_loopback
from foretell.cli.uploads import upload_files
from foretell.cli.waiting import wait_for
from foretell.cli.webhooks import app as webhooks_app
from foretell.errors import ForetellError

app = typer.Typer(help="Serve the models in a folder behind durable prediction APIs.")
predictions_app = typer.Typer(help="Get, list and cancel predictions.")
app.add_typer(models_app, name="models")
app.add_typer(predictions_app, name="predictions")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(keys_app, name="keys")
app.command()(push)
console = Console()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"foretell {version('foretell')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("foretell (not installed: no version)")
        raise typer.Exit()


@app.callback()
def main(
    profile: Annotated[
        str | None,
        typer.Option(
            envvar="FORETELL_PROFILE",
            help="the \\[profiles.NAME] of $XDG_CONFIG_HOME/foretell/config.toml "
            "(~/.config/foretell/config.toml) whose url and key (or key_file) the commands use; "
            "default: its \\[default] table",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="FORETELL_DATA_DIR",
            help="for a server on this machine with no key given: the data directory whose "
            "admin key to use; default: the one the server on that port registered, else "
            "./.foretell",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Serve the models in a folder behind durable prediction APIs, and talk to such a server."""
    chosen.profile, chosen.data_dir = profile, data_dir


class Placement(StrEnum):
    local = "local"
    ray = "ray"


@app.command()
def serve(
    repository: Annotated[Path, typer.Argument(help="root of owner/name/version/")] = Path(
        "examples/models"
    ),
    host: Annotated[str, typer.Option(envvar="FORETELL_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="FORETELL_PORT")] = 8080,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            envvar="FORETELL_GRPC_PORT",
            help="also serve OIP v2 over gRPC (tritonclient.grpc, KServe) on this port; "
            "Triton's is 8001",
        ),
    ] = None,
    db: Annotated[
        str | None, typer.Option(envvar="FORETELL_DB", help="SQLAlchemy URL; default SQLite")
    ] = None,
    data_dir: Annotated[Path, typer.Option(envvar="FORETELL_DATA_DIR")] = Path(".foretell"),
    default_model: Annotated[
        list[str] | None,
        typer.Option(
            envvar="FORETELL_DEFAULT_MODEL",
            help="owner/name that GPUX's POST /predict runs; repeatable (or comma-separated): "
            "each request runs on the one whose inputs it sends; default: the only model",
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth", help="no API keys: for experiments on this machine only (loopback)"
        ),
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            envvar="FORETELL_CORS_ORIGINS",
            help="an origin (scheme://host[:port]) whose pages may call this API from a browser "
            "(CORS); repeatable (or comma-separated), * for any; default: none",
        ),
    ] = None,
    anonymous_public: Annotated[
        bool,
        typer.Option(
            "--anonymous-public",
            envvar="FORETELL_ANONYMOUS_PUBLIC",
            help="requests without a key may run public models through the dialects' "
            "prediction routes (GPUX, OIP v2, SlashML, Spice, Baseten); nothing else",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            envvar="FORETELL_RAY_ADDRESS",
            help="host:port of a Ray cluster's head: replicas placed on Ray run there as actors "
            "(this machine must be a node of the cluster; needs the cluster extra)",
        ),
    ] = None,
    placement: Annotated[
        Placement,
        typer.Option(
            envvar="FORETELL_PLACEMENT",
            help="where replicas of models whose manifest has no 'placement' run",
        ),
    ] = Placement.local,
    files: Annotated[
        str | None,
        typer.Option(
            envvar="FORETELL_FILES",
            help="where uploads and models' output files are kept: a directory, or "
            "s3://bucket/prefix (FORETELL_S3_ENDPOINT_URL and the usual AWS_* variables); "
            "default DATA_DIR/files",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="FORETELL_PUBLIC_URL",
            help="the base URL callers reach this server at, for stored files' URLs; default "
            "http://HOST:PORT",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            envvar="FORETELL_WORKERS",
            min=1,
            help="API processes on this port, each with its own replicas of every model "
            "(memory: N times one server's, unless models are placed on Ray); they share the "
            "store (SQLite on one machine, PostgreSQL on any number)",
        ),
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            envvar="FORETELL_ACCESS_LOG",
            help="one JSON line a request on stdout (logger foretell.access)",
        ),
    ] = True,
    otel: Annotated[
        bool,
        typer.Option(
            "--otel/--no-otel",
            envvar="FORETELL_OTEL",
            help="OpenTelemetry traces (needs the otel extra; exporter from OTEL_* variables)",
        ),
    ] = False,
) -> None:
    """Start the server; models load in the background once it is listening."""
    if no_auth and not is_loopback(host):
        console.print(
            f"[red]error:[/] --no-auth lets anyone in, so it serves only on this machine; "
            f"'{host}' is not a loopback address (use 127.0.0.1, ::1 or localhost)"
        )
        raise typer.Exit(2)
    from pydantic import ValidationError

    from foretell.cli.serve import serve_forever
    from foretell.cli.target import register, unregister
    from foretell.config import Settings

    try:
        settings = Settings(
            repository=repository,
            host=host,
            port=port,
            grpc_port=grpc_port,
            db=db,
            data_dir=data_dir,
            auth=not no_auth,
            anonymous_public=anonymous_public,
            default_model=default_model,
            cors_origins=cors_origin,
            ray_address=ray_address,
            placement=placement.value,
            workers=workers,
            files=files,
            public_url=public_url,
            access_log=access_log,
            otel=otel,
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            console.print(f"[red]error:[/] {error['msg'].removeprefix('Value error, ')}")
        raise typer.Exit(2) from None
    # So that `foretell predict` in any folder finds this server's admin key (cli.target).
    note = register(settings.port, settings.data_dir) if settings.auth else None
    try:
        serve_forever(settings)
    finally:
        if note is not None:
            unregister(note)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="owner/name or owner/name:version")],
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", help="key=value; value parsed as JSON; key=@path uploads a file"
        ),
    ] = None,
    wait: Annotated[
        int,
        typer.Option(
            min=1,
            help="seconds the server holds the first request for the result (Prefer: wait; "
            "past its max_wait_s, as long as it allows); then its status is polled until the "
            "prediction ends, however long it runs",
        ),
    ] = 60,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="print the new prediction's id and return")
    ] = False,
    webhook: Annotated[
        str | None, typer.Option(help="URL to POST the record to as it changes")
    ] = None,
    webhook_events: Annotated[
        list[str] | None,
        typer.Option("--webhook-event", help="start|output|logs|completed; repeatable"),
    ] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="print output (stdout) and logs (stderr) as they come, resuming a dropped "
            "connection; with --json, each event as a JSON line",
        ),
    ] = False,
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Run a prediction, wait for it however long it takes (its status and queue position on
    stderr) and print its output; exits 1 if it failed or was canceled."""
    values = parse_inputs(inputs or [])
    if stream:
        with connected(url, key) as client:
            # Created first, then followed: its id is known, so an interrupted follow can say
            # where it goes on (it runs on; a stream that just ended would leave it nameless).
            record = client.create_prediction(
                model,
                upload_files(client, values),
                wait=None,
                webhook=webhook,
                webhook_events=webhook_events,
            )
            try:
                code = print_events(client.stream(record["id"]), as_json=as_json)
            except KeyboardInterrupt:
                Console(stderr=True).print(
                    f"stopped following; it goes on: foretell predictions follow {record['id']}",
                    highlight=False,
                )
                raise typer.Exit(130) from None
        raise typer.Exit(code)
    with connected(url, key) as client:
        values = upload_files(client, values)

        def create(wait_s: int | bool | None) -> dict[str, Any]:
            return client.create_prediction(
                model, values, wait=wait_s, webhook=webhook, webhook_events=webhook_events
            )

        try:
            record = create(None if no_wait else wait)
        except ForetellError as exc:
            # A server whose max_wait_s is under --wait refuses the preference before making
            # anything (api.prefer): ask for its longest (a bare Prefer: wait) instead.
            if no_wait or getattr(exc, "status", None) != 400 or "Prefer: wait" not in str(exc):
                raise
            record = create(True)
        if no_wait:
            if as_json:
                console.print_json(json.dumps(record))
            else:
                typer.echo(record["id"])
            return
        try:
            record = wait_for(record, client.get_prediction)
        except KeyboardInterrupt:
            Console(stderr=True).print(
                f"stopped waiting; it goes on: foretell predictions get {record['id']}",
                highlight=False,
            )
            raise typer.Exit(130) from None
    if as_json:
        console.print_json(json.dumps(record))
    elif record["status"] == "succeeded":
        console.print_json(json.dumps(record["output"]))
    else:
        error = record.get("error") or {}
        Console(stderr=True).print(
            f"[bold]{record['status']}[/]: {error.get('message', '')} (id {record['id']})",
            highlight=False,
        )
    if record["status"] != "succeeded":
        raise typer.Exit(1)


@models_app.command("list")
def list_models(url: Url = None, key: Key = None, as_json: AsJson = False) -> None:
    """List every model, its versions and their deployment status."""
    body = _call(lambda c: c.list_models(), url, key)
    if as_json:
        console.print_json(json.dumps(body))
        return
    table = Table("model", "model_id", "version", "runtime", "status", "description")
    for m in body["results"]:
        for v in m["versions"]:
            status = (
                v["status"]
                if not v["deployment"]["error"]
                else f"failed: {v['deployment']['error']}"
            )
            table.add_row(
                f"{m['owner']}/{m['name']}",
                m["model_id"],
                str(v["version_number"]),
                v["runtime"] or "-",
                status,
                v["description"],
            )
    console.print(table)


@models_app.command("environments")
def environments(
    model: Annotated[str, typer.Argument(help="owner/name")],
    assign: Annotated[
        str | None,
        typer.Option(help="environment to point at --version (made if new), e.g. staging"),
    ] = None,
    version: Annotated[int | None, typer.Option(min=1, help="the version it serves")] = None,
    url: Url = None,
    key: Key = None,
) -> None:
    """List a model's environments and their versions, or point one at a version (admin)."""
    owner, _, name = model.partition("/")
    if (assign is None) != (version is None):
        console.print("[red]error:[/] --assign and --version go together")
        raise typer.Exit(2)
    if assign is not None and version is not None:
        _call(lambda c: c.assign_environment(owner, name, assign, version), url, key)
    body = _call(lambda c: c.list_environments(owner, name), url, key)
    table = Table("environment", "version", "deployment", "status")
    for e in body["results"]:
        table.add_row(e["environment"], str(e["version_number"]), e["deployment_id"], e["status"])
    console.print(table)


@predictions_app.command("get")
def get_prediction(prediction_id: str, url: Url = None, key: Key = None) -> None:
    """Print one prediction record."""
    console.print_json(json.dumps(_call(lambda c: c.get_prediction(prediction_id), url, key)))


@predictions_app.command("follow")
def follow_prediction(
    prediction_id: str,
    last_event_id: Annotated[
        str | None,
        typer.Option(help="resume after this event (an id an earlier stream printed with --json)"),
    ] = None,
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """Print a prediction's output (stdout) and logs (stderr) as they come, until it ends; a
    dropped connection resumes where it left off. Exits 1 if it failed or was canceled."""
    with connected(url, key) as client:
        events = client.stream(prediction_id, last_event_id=last_event_id)
        code = print_events(events, as_json=as_json)
    raise typer.Exit(code)


@predictions_app.command("list")
def list_predictions(
    model: Annotated[str | None, typer.Option(help="owner/name")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
) -> None:
    """List recent predictions, newest first."""
    body = _call(lambda c: c.list_predictions(model=model, status=status, limit=limit), url, key)
    if as_json:
        console.print_json(json.dumps(body))
        return
    table = Table("model", "status", "created_at")
    table.add_column("id", no_wrap=True, min_width=36)  # whole, so it can be copied
    for p in body["results"]:
        m = p["model"]
        table.add_row(
            f"{m['owner']}/{m['name']}:{m['version_number']}", p["status"], p["created_at"], p["id"]
        )
    console.print(table)


@predictions_app.command("cancel")
def cancel_prediction(prediction_id: str, url: Url = None, key: Key = None) -> None:
    """Cancel a pending or processing prediction."""
    console.print_json(json.dumps(_call(lambda c: c.cancel_prediction(prediction_id), url, key)))


if __name__ == "__main__":
    app()
