"""Predictions/s with a model's replicas on two Ray nodes against the same replicas per node on
one: does adding a node add its replicas' throughput? One run.

    .venv/bin/python bench/scale.py [--per-node 4] [--duration 10]

The model (tests/fixtures/models/fixtures/sleeps-20ms) sleeps 20 ms a call, one input a batch:
bound by time, not CPU, so on this one 2-core machine, where both "nodes" are loopback addresses
(scripts/ray-cluster.sh: 127.0.0.2 and 127.0.0.3), the ratio shows placement and our own
dispatch, not the hardware. Each node declares --per-node CPUs and each replica reserves one:
  1 node:  N replicas pinned to the head (resource node:127.0.0.2)
  2 nodes: 2N replicas spread, which the CPUs force to N on each node
One `foretell serve` per case (the same settings; only the manifest's placement differs), each
under C = 2 x replicas clients (raw keep-alive connections: httpx cost as much CPU as the server)
posting `Prefer: wait` predictions for --duration seconds after a 2 s warm-up. Prints each
rate, the ratio (target: at least 1.8) and where the replicas ran (by their processes' sessions),
and writes bench/RESULTS-scale.md; exits 1 if the replicas were not where the case puts them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from foretell.auth.keys import ADMIN_KEY_FILE

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ray-cluster.sh"
MODEL_DIR = ROOT / "tests" / "fixtures" / "models" / "fixtures" / "sleeps-20ms" / "1"
MODEL = "bench/sleeps-20ms"
RESULTS = ROOT / "bench" / "RESULTS-scale.md"
HEAD_IP = "127.0.0.2"


@dataclass
class Case:
    name: str
    replicas: int
    placement: str  # the manifest's placement block

    def manifest(self) -> str:
        base = (MODEL_DIR / "foretell.yaml").read_text()
        return f"{base}replicas: {self.replicas}\nplacement:\n{self.placement}"


@dataclass
class Result:
    case: Case
    done: int
    failed: int
    seconds: float
    nodes: dict[str, int]  # replicas per node, found by their processes' sessions

    @property
    def rate(self) -> float:
        return self.done / self.seconds


def cases(per_node: int) -> list[Case]:
    one = f"  ray:\n    num_cpus: 1\n    resources: {{'node:{HEAD_IP}': 0.001}}\n"
    two = "  ray:\n    num_cpus: 1\n    strategy: spread\n"
    return [Case("1 node", per_node, one), Case("2 nodes", 2 * per_node, two)]


@contextlib.contextmanager
def cluster(per_node: int) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="ft-scale-", dir="/tmp"))
    env = os.environ | {"RAY_CLUSTER_CPUS": str(per_node)}
    try:
        subprocess.run([str(SCRIPT), "up", str(folder)], check=True, env=env)
        yield folder
    finally:
        subprocess.run([str(SCRIPT), "down", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def cluster_env(folder: Path) -> dict[str, str]:
    lines = (folder / "env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def server(case: Case, folder: Path) -> Iterator[tuple[str, str]]:
    """`foretell serve` over a repository holding only the case's model; (url, admin key)."""
    with tempfile.TemporaryDirectory(prefix="ft-scale-") as tmp:
        version = Path(tmp) / "repo" / MODEL / "1"
        version.mkdir(parents=True)
        shutil.copy(MODEL_DIR / "predict.py", version)
        (version / "foretell.yaml").write_text(case.manifest())
        port, data, log = free_port(), Path(tmp) / "data", Path(tmp) / "server.log"
        command = [sys.executable, "-m", "foretell.cli.main", "serve", str(Path(tmp) / "repo")]
        command += ["--port", str(port), "--data-dir", str(data)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ | cluster_env(folder),
                start_new_session=True,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            key = wait_ready(url, data, process, log)
            # Ready once one replica is: the load waits for all of them (each logs its node).
            wait_log(log, "is ready on Ray node", case.replicas, process)
            yield url, key
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def wait_ready(url: str, data: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        key_file = data / ADMIN_KEY_FILE
        if key_file.exists():
            key = key_file.read_text().strip()
            with contextlib.suppress(httpx.TransportError):
                answer = httpx.get(f"{url}/v1/models/{MODEL}", headers=auth(key), timeout=5)
                status = answer.json()["versions"][0]["deployment"]["status"]
                if status == "ready":
                    return key
                if status == "failed":
                    raise SystemExit(f"the model failed: {answer.json()}")
        time.sleep(0.2)
    raise SystemExit(f"not ready in 180 s:\n{log.read_text()[-3000:]}")


def wait_log(log: Path, line: str, times: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while log.read_text(errors="replace").count(line) < times:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{times} replicas did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def replicas_by_node(folder: Path) -> dict[str, int]:
    """How many ReplicaActor processes run in each node's session."""
    sessions = {int((folder / f"{n}.pid").read_text()): n for n in ("head", "worker")}
    found = {"head": 0, "worker": 0}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            sid = os.getsid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
        if title.startswith(b"ray::ReplicaActor") and sid in sessions:
            found[sessions[sid]] += 1
    return found


async def load(url: str, key: str, concurrency: int, seconds: float) -> tuple[int, int, float]:
    """`concurrency` clients posting predictions back to back for `seconds`, after a warm-up:
    (succeeded, failed, elapsed). Each client is one keep-alive connection writing a prepared
    request and reading the answer by its Content-Length: httpx cost 2.6 ms of CPU a request,
    as much as the server, on the same 2 cores."""
    host, port = url.removeprefix("http://").split(":")
    body = orjson.dumps({"model": MODEL, "input": {"n": 1}})
    request = (
        f"POST /v1/predictions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Prefer: wait=60\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    tally = [0, 0]

    async def client(stop: float, count: bool) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.monotonic() < stop:
                writer.write(request)
                ok = await answer(reader)
                if count:
                    tally[0 if ok else 1] += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(time.monotonic() + 2, False) for _ in range(concurrency)))
    started = time.monotonic()
    await asyncio.gather(*(client(started + seconds, True) for _ in range(concurrency)))
    return tally[0], tally[1], time.monotonic() - started


async def answer(reader: asyncio.StreamReader) -> bool:
    """Read one HTTP/1.1 answer; whether it is a 201 holding a succeeded prediction."""
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    record = await reader.readexactly(length)
    return status.split()[1] == b"201" and b'"status":"succeeded"' in record


def run(case: Case, folder: Path, seconds: float) -> Result:
    with server(case, folder) as (url, key):
        nodes = replicas_by_node(folder)
        done, failed, elapsed = asyncio.run(load(url, key, 2 * case.replicas, seconds))
    return Result(case, done, failed, elapsed, nodes)


def report(results: list[Result], command: str) -> str:
    one, two = results
    ratio = two.rate / one.rate
    lines = [
        "# Replicas on one Ray node against two (bench/scale.py)",
        "",
        f"`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; both nodes "
        "on this machine (127.0.0.2, 127.0.0.3), the model sleeps 20 ms a call, batch 1.",
        "",
        "| case | replicas (head + worker) | clients | succeeded | failed | seconds "
        "| predictions/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        where = f"{r.nodes['head']} + {r.nodes['worker']}"
        lines.append(
            f"| {r.case.name} | {where} | {2 * r.case.replicas} | {r.done} | {r.failed} "
            f"| {r.seconds:.1f} | {r.rate:.1f} |"
        )
    ceiling = 1 / 0.020
    lines += [
        "",
        f"**Ratio 2 nodes / 1 node: {ratio:.2f}x** (target at least 1.8x). The sleep alone "
        f"allows {ceiling:.0f}/s per replica: {one.case.replicas * ceiling:.0f}/s and "
        f"{two.case.replicas * ceiling:.0f}/s; the rest is the HTTP request, the record, "
        "batching, the Ray actor call and this client, all on the same 2 cores.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-node", type=int, default=4, help="replicas per node (N)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per case")
    args = parser.parse_args()
    command = "python bench/scale.py " + " ".join(sys.argv[1:])
    with cluster(args.per_node) as folder:
        results = [run(case, folder, args.duration) for case in cases(args.per_node)]
    text = report(results, command.strip())
    print(text)
    RESULTS.write_text(text)
    n = args.per_node
    if [r.nodes for r in results] != [{"head": n, "worker": 0}, {"head": n, "worker": n}]:
        raise SystemExit(f"the replicas were not where the cases put them: {results}")


if __name__ == "__main__":
    main()
