"""What gets measured: a server to start (ServerSpec) and the HTTP routes on it to drive (Route)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PROBE_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Route:
    """One request that wrk repeats: a POST of a fixed JSON body to a fixed path."""

    label: str  # the row label in the results table
    path: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    # A substring every 2xx answer must contain (checked by the probe and by wrk's Lua script);
    # None where the status code says it all.
    expect: str | None = None
    # Optional routes are probed once the server is up: a 404 means "not implemented yet" and
    # the route is skipped with a note instead of failing the run.
    optional: bool = False
    recorded: bool = False  # the server persists a record of each call (foretell's native route)
    check: Callable[[httpx.Response], str | None] | None = None  # extra probe-only check


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server process and which routes it serves."""

    name: str
    command: Callable[[int, Path], list[str]]  # (port, scratch dir) -> argv
    routes: list[Route]  # routes[0] is required: its first good answer means "ready"
    ready_path: str | None = None  # also GET this until 200 (after the first good answer)
    env: Callable[[int, Path], Mapping[str, str]] | None = None  # (port, scratch dir) -> extra env
    cwd: Path | None = None
    start_timeout_s: float = 90.0
    fatal: bool = False  # True: failing to start stops the run; False: "unavailable" and go on


def json_body(value: Any) -> bytes:
    """Compact JSON, the same bytes for the probe and for wrk."""
    return json.dumps(value, separators=(",", ":")).encode()


def probe(client: httpx.Client, base_url: str, route: Route) -> tuple[int, str | None]:
    """POST the route once: (status code, None if the answer is good else why not)."""
    headers = {"Content-Type": "application/json", **route.headers}
    response = client.post(base_url + route.path, content=route.body, headers=headers)
    if not response.is_success:
        return response.status_code, f"HTTP {response.status_code}: {response.text[:300]}"
    if route.expect is not None and route.expect not in response.text:
        return response.status_code, f"answer lacks {route.expect!r}: {response.text[:300]}"
    if route.check is not None:
        return response.status_code, route.check(response)
    return response.status_code, None
