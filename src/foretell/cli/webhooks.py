"""`foretell webhooks secret | listen`: the signing secret, and a receiver for trying webhooks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    # Imported in the commands: foretell.webhooks brings the store (SQLAlchemy), which
    # `foretell --help` must not pay for.
    from standardwebhooks import Webhook

app = typer.Typer(help="Webhook signing secrets, and a local receiver to try webhooks with.")
console = Console()
notes = Console(stderr=True)  # beside a secret on stdout, which scripts capture

DataDir = Annotated[
    Path, typer.Option(envvar="FORETELL_DATA_DIR", help="the server's data directory")
]


@app.command()
def secret(
    data_dir: DataDir = Path(".foretell"),
    rotate: Annotated[
        bool, typer.Option("--rotate", help="make a new secret; the old one signs on for a while")
    ] = False,
    grace_hours: Annotated[
        float, typer.Option(min=0, max=24 * 30, help="how long the old secret still signs")
    ] = 24.0,
    as_json: Annotated[bool, typer.Option("--json", help="every secret, as JSON")] = False,
) -> None:
    """Print the secret that signs webhooks (Standard Webhooks, whsec_…); give it to receivers.

    The running server picks up a rotation at once and signs with both secrets until the old
    one retires, so receivers can switch over without missing an event."""
    from foretell.webhooks import SigningKeys

    keys = SigningKeys.in_dir(data_dir)
    if rotate:
        keys.rotate(timedelta(hours=grace_hours))
    if as_json:
        entries = [
            {
                "secret": s.value,
                "created_at": s.created_at.isoformat(),
                "retires_at": s.retires_at.isoformat() if s.retires_at else None,
            }
            for s in keys.secrets()
        ]
        console.print_json(json.dumps({"secrets": entries}))
        return
    current, *older = keys.secrets()
    typer.echo(current.value)
    now = datetime.now(UTC)
    for s in older:
        if s.active(now) and s.retires_at is not None:
            until = s.retires_at.isoformat(timespec="seconds")
            notes.print(f"the previous secret also signs until {until}: {s.value}", soft_wrap=True)


@app.command()
def listen(
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 9000,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    signing_secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret",
            help="whsec_… to verify with (repeatable); default: the local server's, "
            "read from --data-dir",
        ),
    ] = None,
    data_dir: DataDir = Path(".foretell"),
    show_body: Annotated[bool, typer.Option("--body", help="print each record in full")] = False,
) -> None:
    """Receive webhooks and print each one, checking its signature: 204 when it verifies, 401
    when it does not (which the sender counts as final)."""
    from standardwebhooks import Webhook

    from foretell.webhooks import SigningKeys

    values = signing_secret or [s.value for s in SigningKeys.in_dir(data_dir).secrets()]
    verifiers = [Webhook(value) for value in values]
    server = ThreadingHTTPServer((host, port), _handler(verifiers, show_body))
    console.print(f"listening on http://{host}:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _handler(verifiers: list[Webhook], show_body: bool) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()  # one event printed at a time

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            record, problem = _verify(verifiers, body, headers)
            # Printed before the answer: once a sender has its answer, the event is on screen.
            with lock:
                msg_id = headers.get("webhook-id", "(no webhook-id)")
                if record is None:
                    console.print(f"[red]rejected[/] {msg_id} {self.path}: {problem}")
                else:
                    console.print(
                        f"[green]verified[/] {msg_id} {self.path} prediction {record.get('id')} "
                        f"{record.get('status')}"
                    )
                    if show_body:
                        console.print_json(json.dumps(record))
            self.send_response(204 if record is not None else 401)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # each request is printed once, above

    return Handler


def _verify(
    verifiers: list[Webhook], body: bytes, headers: dict[str, str]
) -> tuple[dict[str, Any] | None, str]:
    from standardwebhooks.webhooks import WebhookVerificationError

    problem = "no secret given"
    for verifier in verifiers:
        try:
            record = verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            problem = str(exc)
        except ValueError as exc:  # a malformed signature header
            problem = f"malformed webhook headers: {exc}"
        else:
            return (record if isinstance(record, dict) else {}), ""
    return None, problem
