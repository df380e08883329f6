"""foretell side by side with baselines and peers, driven by wrk, in one run on one machine.

For two models (the shipped demo/digits MLP and a heavier MLP built here), each server is started
in turn as a child process pinned to core 0, checked with one real request, warmed up, and driven
by wrk (pinned to core 1) at 1, 16 and 64 connections:

  foretell             `foretell serve`, one row per foretell route: the recorded native
                       `POST /v1/predictions` (Prefer: wait=10), plus routes that light up once
                       they exist (GPUX `/predict`, OIP `/v2/models/…/infer`; a 404 skips them)
  naive FastAPI        bench/baselines/naive_fastapi.py: session.run inline, no batching, as an
                       `async def` endpoint and as a `def` one (FastAPI's thread pool)
  Starlette constant   bench/baselines/starlette_constant.py: the HTTP ceiling, no model
  peers (--peers)      MLServer, LitServe, BentoML with their batching on (bench/peers/, own venv)

It also measures the in-process onnxruntime limit (session.run at batch 1-128, one thread, core
0) and foretell's cold start (spawn → first correct digits prediction) and idle RSS (process
tree). Writes bench/RESULTS.md (tables, ratios, ✔/✘ per target) and prints it.

Run: .venv/bin/python bench/compare.py [--duration S | --quick] [--peers] [--noisy-retries N]
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from harness import comparisons, inprocess, noise, peers, report, servers, wrk
from harness.models import EXAMPLES, HEAVY_WIDTHS, BenchModel, digits_model, heavy_model
from harness.procs import Spawned, can_pin, process_tree, rss_bytes
from harness.results import CONNECTIONS, ModelResults, RouteResult, StartupResults
from harness.runner import Plan, bench_server
from harness.targets import ServerSpec
from rich.console import Console
from rich.markdown import Markdown

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
IDLE_SETTLE_S = 2.0  # after the first prediction, before reading RSS: let start-up work finish
DIGITS_TEXT = (
    "The shipped `examples/models/demo/digits/1/model.onnx` (64 pixel intensities → `label` + "
    "10 `probabilities`; a 64-256-256-10 MLP behind a Scaler). Every request is one row: "
    "sklearn's `load_digits().data[0]` (a zero)."
)
HEAVY_TEXT = (
    "`{widths}` float32 MLP with Relu and random weights, built by `onnx.helper` into a temporary "
    "repository (`bench/heavy/1/`, batching `max_batch_size: 64`, `max_delay_ms: 0`). Every "
    "request is one row of {n} floats."
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs, shorter warm-ups")
    parser.add_argument("--peers", action="store_true", help="also MLServer, LitServe, BentoML")
    parser.add_argument(
        "--noisy-retries",
        type=int,
        default=2,
        help="repeat a run that other processes disturbed up to N times, keep the quietest",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
    if args.duration <= 0 or args.noisy_retries < 0:
        parser.error("--duration must be positive and --noisy-retries at least 0")
    return args


def setup_line(plan: Plan) -> str:
    pinning = (
        "servers and their children pinned to core 0 (`taskset -c 0`), wrk to core 1"
        if can_pin()
        else "**not pinned: fewer than 2 usable cores**"
    )
    conns = "/".join(map(str, CONNECTIONS))
    return (
        f"{pinning}; `wrk -t1 -c{conns} -d{plan.duration_s:g}s --latency --timeout "
        f"{wrk.WRK_TIMEOUT_S}s` after a {plan.warmup_s:g} s warm-up at 16 connections; a run "
        f"in which other processes took > {noise.NOISY:.0%} of core 0 or 1 is repeated up to "
        f"{plan.noisy_retries} times, the quietest kept; onnxruntime with 1 intra-op + 1 "
        "inter-op thread everywhere; 127.0.0.1 only"
    )


def unavailable(specs: list[ServerSpec], reason: str) -> list[RouteResult]:
    """Placeholder rows for servers that could not even be installed."""
    return [RouteResult(s.name, s.routes[0].label, note=f"unavailable: {reason}") for s in specs]


def bench_model(
    results: ModelResults,
    specs: list[ServerSpec],
    plan: Plan,
    scratch: Path,
    console: Console,
    startup: StartupResults | None = None,
) -> None:
    """Run every server for one model; record foretell's start-up when `startup` is given."""

    def on_ready(server: Spawned, ready_s: float) -> None:
        if startup is None or server.name != "foretell":
            return
        startup.cold_start_s = ready_s
        time.sleep(IDLE_SETTLE_S)
        startup.idle_rss_bytes = rss_bytes(server.proc.pid)
        startup.processes = len(process_tree(server.proc.pid))

    for spec in specs:
        results.routes += bench_server(spec, plan, scratch, console, on_ready)


def run(
    args: argparse.Namespace, plan: Plan, console: Console, scratch: Path
) -> tuple[ModelResults, ModelResults, StartupResults]:
    """Measure everything: (digits results, heavy results, foretell start-up)."""
    digits = digits_model()
    heavy = heavy_model(scratch / "repository")
    in_process_s = 0.5 if args.quick else 1.0
    digits_results = ModelResults(digits.ref, DIGITS_TEXT, peers_requested=args.peers)
    widths = "-".join(map(str, HEAVY_WIDTHS))
    heavy_results = ModelResults(heavy.ref, HEAVY_TEXT.format(widths=widths, n=len(heavy.row)))
    for model, results in ((digits, digits_results), (heavy, heavy_results)):
        console.log(f"{model.ref}: in-process limit")
        results.in_process = inprocess.measure(model, in_process_s)

    startup = StartupResults()
    bench_model(digits_results, _local_specs(EXAMPLES, digits), plan, scratch, console, startup)
    if args.peers:
        console.log("peers: preparing bench/.peers-venv (the first time takes minutes)")
        reason = peers.ensure_venv(scratch / "peers-install.log")
        peer_specs = peers.specs(digits)
        if reason is None:
            bench_model(digits_results, peer_specs, plan, scratch, console)
        else:
            digits_results.routes += unavailable(peer_specs, reason)
    bench_model(heavy_results, _local_specs(scratch / "repository", heavy), plan, scratch, console)
    return digits_results, heavy_results, startup


def _local_specs(repository: Path, model: BenchModel) -> list[ServerSpec]:
    return [
        servers.foretell(repository, model),
        servers.naive_fastapi(model),
        servers.naive_fastapi(model, sync=True),
        servers.starlette_constant(model),
    ]


def write_report(
    header: report.Header, digits: ModelResults, heavy: ModelResults, startup: StartupResults
) -> str:
    targets = [
        *comparisons.model_targets(digits, heavy=False),
        *comparisons.model_targets(heavy, heavy=True),
        *comparisons.startup_targets(startup),
    ]
    models = [
        (digits, comparisons.ratios(digits, heavy=False)),
        (heavy, comparisons.ratios(heavy, heavy=True)),
    ]
    startup_rows = [
        [
            "cold start: spawn → first correct demo/digits prediction",
            _text(startup.cold_start_s, "s"),
        ],
        ["idle RSS, server + all children (no load)", _rss_text(startup)],
    ]
    text = report.render(header, models, targets, startup_rows)
    RESULTS.write_text(text)
    return text


def _text(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.2f} {unit}"


def _rss_text(startup: StartupResults) -> str:
    if startup.idle_rss_bytes is None:
        return "n/a"
    return f"{startup.idle_rss_bytes / comparisons.MB:.0f} MB in {startup.processes} processes"


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every `finally` stops its server's process group.
    raise SystemExit(128 + signum)


def main() -> None:
    args = parse_args()
    console = Console(width=120)
    if wrk.wrk_path() is None:
        sys.exit("wrk not found: `apt-get install wrk` (`make bench` installs it)")
    if not can_pin():
        console.print("[yellow]warning: fewer than 2 usable cores; nothing is pinned[/yellow]")
    signal.signal(signal.SIGTERM, _terminate)
    # Python leaves SIGINT ignored when it starts ignored (a background job of a script): ask
    # for KeyboardInterrupt explicitly, so Ctrl-C or `kill -INT` always unwinds the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    warmup = 1.0 if args.quick else 2.0
    plan = Plan(duration_s=args.duration, warmup_s=warmup, noisy_retries=args.noisy_retries)
    started = time.perf_counter()
    header = report.Header(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=report.machine_summary(),
        python=sys.version.split()[0],
        command=shlex.join(sys.orig_argv),
        setup=setup_line(plan),
    )
    with tempfile.TemporaryDirectory(prefix="foretell-compare-") as tmp:
        digits, heavy, startup = run(args, plan, console, Path(tmp))
    header = dataclasses.replace(
        header, load_at_end=report.load_average(), total_s=time.perf_counter() - started
    )
    console.print(Markdown(write_report(header, digits, heavy, startup)))
    console.print(f"written to {RESULTS}")
    native = comparisons.native(digits), comparisons.native(heavy)
    if any(r is None or any(run.errors for run in r.runs.values()) for r in native):
        sys.exit(1)  # foretell itself failed requests: make it loud


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # every server was already stopped on the way out
        sys.exit("interrupted")
