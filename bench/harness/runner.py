"""Start one server, wait until it answers correctly, then drive each of its routes with wrk."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from harness import noise, wrk
from harness.procs import Spawned, free_port, spawned, wait_for
from harness.results import CONNECTIONS, RouteResult
from harness.targets import PROBE_TIMEOUT_S, Route, ServerSpec, probe
from harness.wrk import WrkResult

POLL_S = 0.02  # readiness polling: fine enough to time a cold start to ~20 ms
SETTLE_S = 0.5  # between wrk runs: let the server drain what the last run left queued


class StartFailed(Exception):
    """The server did not come up, or came up and answered wrongly."""


@dataclass(frozen=True)
class Plan:
    """How long each wrk run and each warm-up lasts, and how often a noisy run is repeated."""

    duration_s: float
    warmup_s: float
    noisy_retries: int = 2  # extra attempts for a run that other processes disturbed


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _ready_path_ok(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _first_good_answer(server: Spawned, spec: ServerSpec, client: httpx.Client) -> float:
    """Poll the required route until it answers correctly; seconds since the spawn."""
    route, deadline = spec.routes[0], server.started_at + spec.start_timeout_s
    last = "no answer yet"
    while True:
        if server.proc.poll() is not None:
            raise StartFailed(
                f"exited {server.proc.returncode} while starting: {server.log_tail()}"
            )
        try:
            _, reason = probe(client, server.base_url, route)
        except httpx.HTTPError as exc:  # connection refused until it listens
            reason = f"{type(exc).__name__}: {exc}"
        if reason is None:
            return time.perf_counter() - server.started_at
        last = reason
        if spec.ready_path and _ready_path_ok(client, server.base_url + spec.ready_path):
            # It says it is ready, so a wrong answer now is a real failure, not a slow start.
            _, reason = probe(client, server.base_url, route)
            if reason is None:
                return time.perf_counter() - server.started_at
            raise StartFailed(f"ready, but {route.path} answered wrongly: {reason}")
        if time.perf_counter() > deadline:
            raise StartFailed(
                f"no good answer after {spec.start_timeout_s:.0f} s; last: {last}; "
                f"log: {server.log_tail(5)}"
            )
        time.sleep(POLL_S)


def wait_ready(server: Spawned, spec: ServerSpec) -> float:
    """Seconds from spawn to the first correct answer; then the ready path must say 200 too."""
    with httpx.Client(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
        ready_s = _first_good_answer(server, spec, client)
        if spec.ready_path:
            url = server.base_url + spec.ready_path
            if not wait_for(lambda: _ready_path_ok(client, url), spec.start_timeout_s):
                raise StartFailed(f"GET {spec.ready_path} never answered 200")
    return ready_s


def _optional_skip(server: Spawned, route: Route) -> str | None:
    """For an optional route: a note if it cannot be measured (404: not implemented yet)."""
    with httpx.Client(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
        try:
            status, reason = probe(client, server.base_url, route)
        except httpx.HTTPError as exc:
            return f"unavailable: {type(exc).__name__}: {exc}"
    if status == 404:
        return "skipped (route not available yet)"
    return None if reason is None else f"unavailable: probe answered {reason}"


def measured(
    server: Spawned, url: str, script: Path, connections: int, seconds: float
) -> WrkResult:
    """One wrk run, with how much of each pinned core other processes took meanwhile."""
    before = noise.snapshot(server.proc.pid)
    run = wrk.run(url, script, connections, seconds)
    after = noise.snapshot(server.proc.pid)
    others = noise.others_share(before, after)
    return dataclasses.replace(
        run,
        others_server=others[0],
        others_client=others[1],
        server_cpu_s=noise.server_cpu_s(before, after),
    )


def _quietest(
    server: Spawned, url: str, script: Path, connections: int, plan: Plan, console: Console
) -> WrkResult:
    """Repeat a noisy run (another job took a share of a pinned core) and keep the quietest."""
    runs: list[WrkResult] = []
    for attempt in range(1 + plan.noisy_retries):
        time.sleep(SETTLE_S)
        run = measured(server, url, script, connections, plan.duration_s)
        runs.append(run)
        if not run.noisy:
            break
        if attempt < plan.noisy_retries:
            others = f"{run.others_server:.0%} / {run.others_client:.0%}"
            console.log(
                f"  [yellow]c={connections}: others took {others} of core 0 / 1; again[/yellow]"
            )
    return min(runs, key=lambda r: max(r.others_server, r.others_client))


def bench_route(
    server: Spawned, spec: ServerSpec, route: Route, plan: Plan, scratch: Path, console: Console
) -> RouteResult:
    """Warm up, then one wrk run per connection count; notes instead of numbers on failure."""
    result = RouteResult(spec.name, route.label, recorded=route.recorded)
    if route.optional and (note := _optional_skip(server, route)):
        result.note = note
        return result
    script = scratch / f"{slug(route.label)}.lua"
    script.write_text(wrk.lua_script(route.body, route.headers, route.expect))
    url = server.base_url + route.path
    try:
        wrk.run(url, script, 16, plan.warmup_s)  # warm-up: caches, pools, first batches
        for connections in CONNECTIONS:
            run = _quietest(server, url, script, connections, plan, console)
            result.runs[connections] = run
            flag = f" [red]{run.error_text()}[/red]" if run.errors else ""
            if run.noisy:
                others = f"{run.others_server:.0%} / {run.others_client:.0%}"
                flag += f" [yellow]noisy: others took {others}[/yellow]"
            console.log(f"  {route.label} c={connections}: {run.rps:,.0f} req/s{flag}")
    except (RuntimeError, ValueError) as exc:
        result.note = f"wrk failed: {exc}"
    if server.proc.poll() is not None:
        code = server.proc.returncode
        result.note = f"server died under load (exit {code}): {server.log_tail(5)}"
    return result


def bench_server(
    spec: ServerSpec,
    plan: Plan,
    scratch: Path,
    console: Console,
    on_ready: Callable[[Spawned, float], None] | None = None,
) -> list[RouteResult]:
    """Start `spec`, check it, drive each route, stop it. Unavailable → notes (unless fatal)."""
    folder = scratch / slug(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    console.log(f"starting {spec.name} on port {port}")
    argv = spec.command(port, folder)
    env = spec.env(port, folder) if spec.env else None
    try:
        with spawned(spec.name, argv, port, folder / "server.log", env, spec.cwd) as server:
            ready_s = wait_ready(server, spec)
            console.log(f"{spec.name} answered correctly {ready_s:.2f} s after spawn")
            if on_ready is not None:
                on_ready(server, ready_s)
            return [bench_route(server, spec, r, plan, folder, console) for r in spec.routes]
    except (StartFailed, OSError) as exc:
        if spec.fatal:
            raise SystemExit(f"{spec.name} failed: {exc}\nlog: {folder / 'server.log'}") from exc
        console.log(f"[yellow]{spec.name} unavailable: {exc}[/yellow]")
        note = f"unavailable: {exc}"
        return [RouteResult(spec.name, r.label, note=note) for r in spec.routes if not r.optional]
