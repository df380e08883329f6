"""Latency of one small prediction through each layer of foretell, side by side in one run.

What it measures, for `demo/iris` (4 floats) and `demo/digits` (64 floats), one item per call:

  in-process   `get_runtime("onnx").load(version).predict([input])` in this process: the floor,
               onnxruntime plus foretell's feed/JSON conversion, no IPC, no HTTP, no store.
  replica      `await ProcessReplica(version).predict([input])`: adds the worker process boundary
               (pickle over a pipe to a spawned child and back, asyncio wake-ups).
  http seq     `POST /v1/predictions` with `Prefer: wait=10` against `foretell serve` (a child
               process), one keep-alive connection, one request at a time: adds HTTP, validation,
               the scheduler/batcher, and the SQLite write that makes the record durable.
  http conc    the same request from C concurrent asyncio tasks (httpx.AsyncClient, C connections):
               shows what batching and the event loop do under load.

How to read it: p50/p90/p99 are per-request latencies in ms; req/s is completed calls divided by
the wall time of the measured loop; "x in-proc" is that row's p50 over the in-process p50 of the
same model, i.e. how many times the floor each layer costs. A second table splits each HTTP p50
using the returned record's own timestamps (created_at, started_at, completed_at) and shows the
CPU the benchmark's client burned per request. Everything runs on the same machine, so in the HTTP
rows the client competes with the server for the same cores (on 2 cores that matters), and other
load on the machine shows up directly: the load average at start is printed with the results.

Run: .venv/bin/python bench/latency.py [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from foretell.auth.keys import ADMIN_KEY_FILE
from foretell.manifest import ModelVersion, scan_repository
from foretell.runtimes.registry import get_runtime
from foretell.workers import ProcessReplica

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = ROOT / "examples" / "models"
HOST = "127.0.0.1"
IRIS_INPUT: dict[str, Any] = {"features": [[5.1, 3.5, 1.4, 0.2]]}
DIGITS_INPUT: dict[str, Any] = {"features": [[float((i * 7) % 17) for i in range(64)]]}
CASES: dict[str, dict[str, Any]] = {"demo/iris": IRIS_INPUT, "demo/digits": DIGITS_INPUT}


@dataclass(frozen=True)
class Plan:
    """How many calls each layer makes; --requests N scales them all."""

    in_process: int
    replica: int
    http_seq: int
    http_conc: int
    concurrency: int
    warmup: int


def percentile_ms(samples: list[float], q: int) -> float:
    """The q-th percentile of samples in seconds, in milliseconds (nearest rank)."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index] * 1000


@dataclass(frozen=True)
class Result:
    """One layer's measured latencies (seconds) for one model."""

    model: str
    layer: str
    latencies: list[float]
    wall_s: float
    errors: int = 0
    queued: list[float] = field(default_factory=list)  # HTTP only: server created -> started
    running: list[float] = field(default_factory=list)  # HTTP only: server started -> completed
    client_cpu_s: float = 0.0  # HTTP only: CPU time this (client) process used while measuring

    def percentile_ms(self, q: int) -> float:
        """The q-th percentile latency in milliseconds."""
        return percentile_ms(self.latencies, q)

    @property
    def throughput(self) -> float:
        """Completed calls per second of measured wall time."""
        return len(self.latencies) / self.wall_s


def latest_version(repo_versions: list[ModelVersion], ref: str) -> ModelVersion:
    """The highest version of `owner/name` in the repository."""
    owner, name = ref.split("/")
    found = [v for v in repo_versions if v.owner == owner and v.name == name]
    if not found:
        raise SystemExit(f"model {ref} not found under {REPOSITORY}")
    return max(found, key=lambda v: v.number)


def time_calls(call: Callable[[], object], n: int) -> tuple[list[float], float]:
    """Run `call` n times; per-call latencies and total wall time, in seconds."""
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for _ in range(n):
        t0 = clock()
        call()
        latencies.append(clock() - t0)
    return latencies, clock() - start


async def time_async_calls(
    call: Callable[[], Awaitable[object]], n: int
) -> tuple[list[float], float]:
    """Await `call` n times one after another; latencies and wall time, in seconds."""
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for _ in range(n):
        t0 = clock()
        await call()
        latencies.append(clock() - t0)
    return latencies, clock() - start


def bench_in_process(model: str, version: ModelVersion, plan: Plan) -> Result:
    """Layer 1: the loaded ONNX model called directly in this process."""
    loaded = get_runtime("onnx").load(version)
    batch = [CASES[model]]
    for _ in range(plan.warmup):
        loaded.predict(batch)
    latencies, wall = time_calls(lambda: loaded.predict(batch), plan.in_process)
    return Result(model, "in-process", latencies, wall)


async def bench_replica(model: str, version: ModelVersion, plan: Plan) -> Result:
    """Layer 2: one spawned worker process, one item per batch, one batch at a time."""
    replica = ProcessReplica(version)
    await replica.start()
    batch = [CASES[model]]
    try:
        first = (await replica.predict(batch))[0]
        if first.error is not None:
            raise SystemExit(f"{model}: the replica failed to predict: {first.error}")
        for _ in range(plan.warmup):
            await replica.predict(batch)
        latencies, wall = await time_async_calls(lambda: replica.predict(batch), plan.replica)
    finally:
        await replica.stop()
    return Result(model, "replica", latencies, wall)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(port: int, data_dir: Path) -> list[str]:
    """The `foretell serve` command line for the benchmark server."""
    exe = Path(sys.executable).with_name("foretell")
    serve = ["serve", str(REPOSITORY), "--host", HOST, "--port", str(port)]
    return [str(exe), *serve, "--data-dir", str(data_dir)]


def wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path, limit_s: float) -> None:
    """Poll GET /health/ready until 200; exit with the server log if it dies or times out."""
    deadline = time.monotonic() + limit_s
    with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(
                    f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health/ready").status_code == 200:
                    return
            time.sleep(0.1)
    raise SystemExit(f"server not ready after {limit_s:g} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_server() -> Iterator[str]:
    """Start `foretell serve` in its own process group; yield its base URL; kill the group."""
    with tempfile.TemporaryDirectory(prefix="foretell-bench-") as tmp:
        port, log = free_port(), Path(tmp) / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                server_command(port, Path(tmp) / "data"),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        try:
            base_url = f"http://{HOST}:{port}"
            wait_ready(base_url, process, log, limit_s=60.0)
            # Called as the admin key the server made on its first start.
            key = (Path(tmp) / "data" / ADMIN_KEY_FILE).read_text().strip()
            HEADERS["Authorization"] = f"Bearer {key}"
            yield base_url
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def request_body(model: str, version: ModelVersion) -> dict[str, Any]:
    """The native prediction request, pinned to the same version the other layers load."""
    return {"model": f"{model}:{version.number}", "input": CASES[model]}


HEADERS = {"Prefer": "wait=10"}


@dataclass
class HttpTally:
    """Client latencies plus the server's own timestamps from each returned record."""

    latencies: list[float] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)  # created_at -> started_at
    running: list[float] = field(default_factory=list)  # started_at -> completed_at
    errors: int = 0
    cpu_s: float = 0.0  # CPU time this (client) process used

    def record(self, latency: float, response: httpx.Response) -> None:
        """Keep one request's latency; count it as an error unless the record succeeded."""
        self.latencies.append(latency)
        record = response.json() if response.status_code in (200, 201) else {}
        if record.get("status") != "succeeded":
            self.errors += 1
            return
        created, started, completed = (
            datetime.fromisoformat(record[k]) for k in ("created_at", "started_at", "completed_at")
        )
        self.queued.append((started - created).total_seconds())
        self.running.append((completed - started).total_seconds())

    def result(self, model: str, layer: str, wall_s: float) -> Result:
        """The tally as a Result row."""
        return Result(
            model, layer, self.latencies, wall_s, self.errors, self.queued, self.running, self.cpu_s
        )


def bench_http_seq(model: str, version: ModelVersion, base_url: str, plan: Plan) -> Result:
    """Layer 3a: one keep-alive connection, one request at a time."""
    body = request_body(model, version)
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30.0) as client:

        def run(n: int, tally: HttpTally) -> float:
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                t0 = time.perf_counter()
                response = client.post("/v1/predictions", json=body, headers=HEADERS)
                tally.record(time.perf_counter() - t0, response)
            tally.cpu_s = time.process_time() - cpu
            return time.perf_counter() - start

        run(plan.warmup, HttpTally())
        tally = HttpTally()
        wall = run(plan.http_seq, tally)
    return tally.result(model, "http seq", wall)


async def http_worker(
    client: httpx.AsyncClient, body: dict[str, Any], todo: list[int], tally: HttpTally
) -> None:
    """Take requests off `todo` until it is empty, recording each in `tally`."""
    while todo:
        todo.pop()
        t0 = time.perf_counter()
        response = await client.post("/v1/predictions", json=body, headers=HEADERS)
        tally.record(time.perf_counter() - t0, response)


async def bench_http_conc(model: str, version: ModelVersion, base_url: str, plan: Plan) -> Result:
    """Layer 3b: C concurrent asyncio tasks over C keep-alive connections."""
    body = request_body(model, version)
    c = plan.concurrency
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, timeout=30.0, limits=limits
    ) as client:

        async def run(n: int, tally: HttpTally) -> float:
            todo = list(range(n))
            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(http_worker(client, body, todo, tally) for _ in range(c)))
            tally.cpu_s = time.process_time() - cpu
            return time.perf_counter() - start

        await run(max(plan.warmup, c * 4), HttpTally())
        tally = HttpTally()
        wall = await run(plan.http_conc, tally)
    return tally.result(model, f"http conc={c}", wall)


def render(results: list[Result], console: Console) -> None:
    """Print the side-by-side table: percentiles, throughput and ratio to the in-process p50."""
    floor = {r.model: r.percentile_ms(50) for r in results if r.layer == "in-process"}
    table = Table(title="one small prediction, per layer")
    for column in ("model", "layer", "n", "p50 ms", "p90 ms", "p99 ms", "req/s", "x in-proc"):
        table.add_column(column, justify="left" if column in ("model", "layer") else "right")
    for r in results:
        p50 = r.percentile_ms(50)
        n = f"{len(r.latencies)}" + (f" ({r.errors} err)" if r.errors else "")
        table.add_row(
            r.model,
            r.layer,
            n,
            f"{p50:.3f}",
            f"{r.percentile_ms(90):.3f}",
            f"{r.percentile_ms(99):.3f}",
            f"{r.throughput:,.0f}",
            f"{p50 / floor[r.model]:.1f}x",
        )
    console.print(table)


def render_split(results: list[Result], console: Console) -> None:
    """Print where an HTTP request's p50 goes, from the records' own timestamps."""
    table = Table(title="where the HTTP p50 goes (server timestamps, ms)")
    columns = ("client p50", "created→started", "started→completed", "rest", "client cpu/req")
    for column in ("model", "layer", *columns):
        table.add_column(column, justify="left" if column in ("model", "layer") else "right")
    for r in results:
        if not r.queued:
            continue
        p50, queued = r.percentile_ms(50), percentile_ms(r.queued, 50)
        running = percentile_ms(r.running, 50)
        cpu = r.client_cpu_s * 1000 / len(r.latencies)
        cells = (p50, queued, running, p50 - queued - running, cpu)
        table.add_row(r.model, r.layer, *(f"{v:.3f}" for v in cells))
    console.print(table)
    console.print(
        "created→started: insert committed, input validated, queued, batch window (max_delay_ms)\n"
        "started→completed: dispatch to the replica and back, incl. the replica's own run\n"
        "rest: client, HTTP, routing, JSON, and the commit of the finished record\n"
        "client cpu/req: CPU the benchmark's own client spent per request (same cores as server)"
    )


def machine_summary() -> str:
    """nproc, CPU model, load, Python and the exact command line of this run."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    command = shlex.join(sys.orig_argv)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: nproc={os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), {cpu}, "
        f"{platform.system()} {platform.release()}, load average at start {load}\n"
        f"python: {platform.python_version()} ({platform.python_implementation()})\n"
        f"command: {command}"
    )


def run_all(plan: Plan, console: Console) -> list[Result]:
    """Measure every layer for every model; the server is started once for both models."""
    versions = scan_repository(REPOSITORY).versions
    chosen = {model: latest_version(versions, model) for model in CASES}
    results: list[Result] = []
    for model, version in chosen.items():
        console.log(f"{model}:{version.number}: in-process, replica")
        results.append(bench_in_process(model, version, plan))
        results.append(asyncio.run(bench_replica(model, version, plan)))
    console.log("starting foretell serve")
    with running_server() as base_url:
        for model, version in chosen.items():
            console.log(f"{model}:{version.number}: http seq, http conc")
            results.append(bench_http_seq(model, version, base_url, plan))
            results.append(asyncio.run(bench_http_conc(model, version, base_url, plan)))
    order = {model: i for i, model in enumerate(CASES)}
    return sorted(results, key=lambda r: order[r.model])  # stable: layer order kept per model


def parse_args() -> Plan:
    """Command-line options into a Plan; --requests N sets N calls per layer and model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="calls per layer and model (default 2000; 1000 for sequential HTTP)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent HTTP clients")
    args = parser.parse_args()
    if (args.requests is not None and args.requests < 1) or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    n: int | None = args.requests
    return Plan(
        in_process=n or 2000,
        replica=n or 2000,
        http_seq=n or 1000,
        http_conc=n or 2000,
        concurrency=args.concurrency,
        warmup=100,
    )


def main() -> None:
    """Run the benchmark and print the machine, the command and the table."""
    plan = parse_args()
    console = Console(width=110)
    started, machine = time.perf_counter(), machine_summary()
    results = run_all(plan, console)
    console.print(machine)
    render(results, console)
    render_split(results, console)
    console.print(f"total time: {time.perf_counter() - started:.1f} s")
    if any(r.errors for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
