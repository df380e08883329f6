"""OIP v2 inference over gRPC beside the same inference over HTTP, on one `foretell serve`.

    .venv/bin/python bench/grpc_oip.py [--duration 5] [--rounds 3] [--connections 1 64]

One server (demo/digits only, a fresh SQLite data dir, pinned to core 0) serves both:
HTTP `POST /v2/models/demo/digits/infer` (JSON tensors, as tritonclient.http's `binary_data=False`)
and gRPC `ModelInfer` (the same 64 FP32 pixels as raw_input_contents). Both are recorded
predictions, answered by the same path. For each concurrency, each round runs HTTP then gRPC
for --duration seconds after a 1 s warm-up, with the load generator pinned to core 1:
- HTTP: wrk, one thread, C keep-alive connections, a Lua POST (bench/harness/wrk.py);
- gRPC: this script in --client mode, one process, grpc.aio, C calls in flight on one channel
  (as tritonclient.grpc multiplexes them), sending pre-serialized request bytes.
Each round also drives gRPC `ServerLive` (no key, no model: the gRPC server's own floor, the hop
to the app's loop included). Prints req/s, p50, predictions per model batch (from /metrics) and
the server's CPU per request for each, the ModelInfer/HTTP ratio per round and the client's CPU
share of its core: near 100% means that side was client-bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from harness import noise
from harness.models import digits_model
from harness.procs import CLIENT_CORE, HOST, free_port, pinned, spawned
from harness.wrk import lua_script
from harness.wrk import run as run_wrk

ROOT = Path(__file__).resolve().parents[1]
MODEL = "demo/digits"
WARMUP_S = 1.0


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    errors: int
    server_cpu_us: float  # server CPU per answered request
    client_cpu: float  # share of the client core the load generator used
    others: float  # share of the server's core that other processes took meanwhile (noise)
    per_batch: float  # predictions per model batch meanwhile (foretell_batch_size): 1 = none


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--client", nargs=5, metavar=("TARGET", "KEY", "C", "SECONDS", "RPC"))
    args = parser.parse_args()
    if args.client:
        target, key, connections, seconds, rpc = args.client
        found = asyncio.run(_drive(target, key, int(connections), float(seconds), rpc))
        print(json.dumps(found))
        return
    _compare(args.duration, args.rounds, args.connections)


def _compare(duration: float, rounds: int, connections: list[int]) -> None:
    row = digits_model().row
    with tempfile.TemporaryDirectory(prefix="grpc-oip-") as scratch:
        base = Path(scratch)
        (base / "repo" / "demo").mkdir(parents=True)
        (base / "repo" / "demo" / "digits").symlink_to(ROOT / "examples/models/demo/digits")
        http_port, grpc_port = free_port(), free_port()
        argv = [
            str(Path(sys.executable).parent / "foretell"),
            *("serve", str(base / "repo"), "--host", HOST, "--port", str(http_port)),
            *("--grpc-port", str(grpc_port), "--data-dir", str(base / "data")),
        ]
        with spawned("foretell", argv, http_port, base / "server.log") as server:
            key = _ready(server.base_url, base / "data" / "admin-key", server.log_tail)
            body = {"inputs": [{"name": "features", "shape": [1, 64], "datatype": "FP32"}]}
            body["inputs"][0]["data"] = row
            script = base / "infer.lua"
            script.write_text(
                lua_script(
                    json.dumps(body).encode(),
                    {"Authorization": f"Bearer {key}"},
                    expect='"prediction_id"',
                )
            )
            url = f"{server.base_url}/v2/models/{MODEL}/infer"
            target = f"{HOST}:{grpc_port}"
            print(f"server pid {server.proc.pid} on core 0; load generators on core {CLIENT_CORE}")
            for c in connections:
                http_runs, grpc_runs = [], []
                for n in range(rounds):
                    batches = _Batches(server.base_url, key)
                    http = _http(server.proc.pid, url, script, c, duration, batches)
                    grpc = _grpc(server.proc.pid, target, key, c, duration, "ModelInfer", batches)
                    # gRPC's own floor: an RPC that does nothing (no key, no model).
                    floor = _grpc(server.proc.pid, target, key, c, duration, "ServerLive", batches)
                    http_runs.append(http)
                    grpc_runs.append(grpc)
                    print(
                        f"c={c} round {n + 1}: HTTP infer {_show(http)} | gRPC ModelInfer "
                        f"{_show(grpc)} | ratio {grpc.rps / http.rps:.2f} | gRPC ServerLive "
                        f"{_show(floor)}",
                        flush=True,
                    )
                ratios = [g.rps / h.rps for h, g in zip(http_runs, grpc_runs, strict=True)]
                print(
                    f"c={c} median: HTTP {statistics.median(r.rps for r in http_runs):,.0f} "
                    f"req/s p50 {statistics.median(r.p50_ms for r in http_runs):.2f} ms | gRPC "
                    f"{statistics.median(r.rps for r in grpc_runs):,.0f} req/s p50 "
                    f"{statistics.median(r.p50_ms for r in grpc_runs):.2f} ms | ratio gRPC/HTTP "
                    f"{statistics.median(ratios):.2f} (rounds: "
                    f"{', '.join(f'{r:.2f}' for r in ratios)})",
                    flush=True,
                )


def _show(run: Run) -> str:
    errors = f", {run.errors} errors" if run.errors else ""
    batch = "" if math.isnan(run.per_batch) else f", {run.per_batch:.1f} a batch"
    return (
        f"{run.rps:,.0f} req/s p50 {run.p50_ms:.2f} ms{batch}, "
        f"server {run.server_cpu_us:.0f} us/req, "
        f"client core {run.client_cpu:.0%}, others on core 0 {run.others:.0%}{errors}"
    )


def _ready(url: str, key_file: Path, log_tail: object) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if key_file.exists():
            key = key_file.read_text().strip()
            try:
                answer = httpx.get(f"{url}/v2/health/ready", timeout=5)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 200:
                return key
        time.sleep(0.2)
    raise SystemExit(f"server not ready after 120 s:\n{log_tail()}")  # type: ignore[operator]


class _Batches:
    """Predictions per model batch between `start` and `stop`, from the server's /metrics: HTTP
    batched 17 at 64 connections, and gRPC calls taken one at a time would make batches of 1."""

    def __init__(self, url: str, key: str) -> None:
        self._url = f"{url}/metrics"
        self._headers = {"Authorization": f"Bearer {key}"}
        self._start = (0.0, 0.0)

    def _read(self) -> tuple[float, float]:
        text = httpx.get(self._url, headers=self._headers, timeout=10).text
        found = [
            sum(
                float(v)
                for v in re.findall(rf"^foretell_batch_size_{part}{{[^}}]*}} (\S+)", text, re.M)
            )
            for part in ("sum", "count")
        ]
        return found[0], found[1]

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float:
        items, batches = (b - a for a, b in zip(self._start, self._read(), strict=True))
        return items / batches if batches else float("nan")


def _http(
    pid: int, url: str, script: Path, connections: int, duration: float, batches: _Batches
) -> Run:
    run_wrk(url, script, connections, WARMUP_S)
    batches.start()
    before = noise.snapshot(pid)
    result = run_wrk(url, script, connections, duration)
    after = noise.snapshot(pid)
    per_batch = batches.stop()
    client = (after.children - before.children) / noise.TICKS / duration
    cpu = noise.server_cpu_s(before, after) / max(result.requests, 1) * 1e6
    others = noise.others_share(before, after)[0]
    return Run(result.rps, result.p50_ms, result.errors, cpu, client, others, per_batch)


def _grpc(
    pid: int,
    target: str,
    key: str,
    connections: int,
    duration: float,
    rpc: str,
    batches: _Batches,
) -> Run:
    def client(seconds: float) -> dict[str, float]:
        argv = [sys.executable, __file__, "--client", target, key, str(connections)]
        argv += [str(seconds), rpc]
        done = subprocess.run(
            pinned(argv, CLIENT_CORE), capture_output=True, text=True, check=True, timeout=120
        )
        found: dict[str, float] = json.loads(done.stdout)
        return found

    client(WARMUP_S)
    batches.start()
    before = noise.snapshot(pid)
    result = client(duration)
    after = noise.snapshot(pid)
    per_batch = batches.stop()
    cpu = noise.server_cpu_s(before, after) / max(result["requests"], 1) * 1e6
    others = noise.others_share(before, after)[0]
    errors = int(result["errors"])
    return Run(result["rps"], result["p50_ms"], errors, cpu, result["cpu"], others, per_batch)


async def _drive(
    target: str, key: str, connections: int, seconds: float, rpc: str
) -> dict[str, float]:
    """The gRPC load generator: `connections` calls of `rpc` in flight for `seconds`."""
    import grpc
    import numpy as np

    from foretell.api.oip_grpc.proto import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="features", datatype="FP32", shape=[1, 64])
    request.raw_input_contents.append(np.asarray(digits_model().row, dtype="<f4").tobytes())
    payload = request.SerializeToString() if rpc == "ModelInfer" else b""
    metadata = (("authorization", f"Bearer {key}"),)
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        infer = channel.unary_unary(f"/inference.GRPCInferenceService/{rpc}")
        await infer(payload, metadata=metadata)
        start = time.perf_counter()
        end = start + seconds
        cpu_start = time.process_time()

        async def worker() -> None:
            nonlocal errors
            while (began := time.perf_counter()) < end:
                try:
                    answer = await infer(payload, metadata=metadata)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - began)
                if not answer:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
        cpu = (time.process_time() - cpu_start) / elapsed
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "errors": errors,
        "cpu": cpu,
    }


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
