"""Sentence-embedding throughput of demo/minilm: through `foretell serve` at 16 concurrent
requests, against the same model called in-process at the server's batch size, in one run.

    .venv/bin/python bench/embeddings.py [--sentences 512]

In-process, the model runs batches of the manifest's `max_batch_size` with torch on every CPU,
as a script of one's own would; it is also run at the mean batch the server actually formed,
which separates what batching costs from what serving costs. The server runs the manifest as
shipped (its replicas, threads and batching window). Client, server and workers share the
machine's cores, so the CPU the client burned is printed beside the ratio.

Prints sentences/s for both and their ratios, and writes bench/RESULTS-embeddings.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from latency import running_server

from foretell.manifest import ModelVersion, scan_repository
from foretell.runtimes.registry import get_runtime

ROOT = Path(__file__).resolve().parents[1]
MODEL = "demo/minilm"
WARM_UP_S = 120.0
CONCURRENCY = 16
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "stocks",
    "fell",
    "and",
    "rain",
    "came",
]


def sentences(n: int) -> list[str]:
    """n different sentences of 8-14 words, the same every run."""
    return [
        " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(8 + i % 7)) for i in range(n)
    ]


def minilm() -> ModelVersion:
    (version,) = [
        v for v in scan_repository(ROOT / "examples/models").versions if v.name == "minilm"
    ]
    return version


def in_process(texts: list[str], batch: int) -> float:
    """Sentences/s of the runtime's own model, batches of `batch`, every CPU, no server."""
    import torch

    model = get_runtime("transformers").load(minilm())
    torch.set_num_threads(len(os.sched_getaffinity(0)))  # load() gave it one replica's share
    model.predict([{"text": t} for t in texts[:batch]])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.predict([{"text": t} for t in texts[i : i + batch]])
    return len(texts) / (time.perf_counter() - started)


@dataclass
class Served:
    rate: float  # sentences/s
    mean_batch: float  # what the server's batcher formed, from its own metrics
    client_cpu_s: float  # what this process burned sending and reading
    busy_cpu_s: float  # what the whole machine burned meanwhile


def busy_cpu_s() -> float:
    """CPU-seconds the machine has spent busy since boot (all of /proc/stat's but idle, iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def batches(metrics: str) -> tuple[float, float]:
    """(sum, count) of demo/minilm's batch-size histogram in a /metrics page."""
    found = dict.fromkeys(("sum", "count"), 0.0)
    for line in metrics.splitlines():
        for key in found:
            if line.startswith(f"foretell_batch_size_{key}{{") and f'"{MODEL}:' in line:
                found[key] = float(line.rsplit(" ", 1)[1])
    return found["sum"], found["count"]


async def warm_up(client: httpx.AsyncClient) -> None:
    """Until every replica the model may run is up: it runs none while idle (min 0), and a
    second starts only once a queue has waited for the first."""
    warm = {"model": MODEL, "input": {"text": "warm up"}}
    deadline = time.monotonic() + WARM_UP_S
    while time.monotonic() < deadline:
        await asyncio.gather(
            *(client.post("/v1/predictions", json=warm) for _ in range(CONCURRENCY * 4))
        )
        record = (await client.get(f"/v1/models/{MODEL}")).json()
        replicas = record["versions"][0]["deployment"]["replicas"]
        if replicas["running"] >= replicas["max"]:
            return
    raise SystemExit(f"{MODEL}'s replicas were not all up after {WARM_UP_S:g} s")


async def through_server(base_url: str, headers: dict[str, str], texts: list[str]) -> Served:
    """Sentences/s through POST /v1/predictions, CONCURRENCY requests in flight."""
    todo = list(texts)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:

        async def worker() -> None:
            while todo:
                text = todo.pop()
                body = {"model": MODEL, "input": {"text": text}}
                response = await client.post("/v1/predictions", json=body)
                assert response.json()["status"] == "succeeded", response.text

        await warm_up(client)
        items_before, batches_before = batches((await client.get("/metrics")).text)
        cpu_before, busy_before = time.process_time(), busy_cpu_s()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
        client_cpu, busy = time.process_time() - cpu_before, busy_cpu_s() - busy_before
        items_after, batches_after = batches((await client.get("/metrics")).text)
        mean = (items_after - items_before) / max(1.0, batches_after - batches_before)
        return Served(len(texts) / elapsed, mean, client_cpu, busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sentences", type=int, default=512)
    args = parser.parse_args()
    texts = sentences(args.sentences)
    manifest = minilm().manifest
    batch = manifest.batching.max_batch_size
    from latency import HEADERS

    with running_server() as base_url:
        served = asyncio.run(through_server(base_url, {**HEADERS, "Prefer": "wait=60"}, texts))
    local = in_process(texts, batch)
    formed = max(1, round(served.mean_batch))
    local_formed = in_process(texts, formed)
    cpus = len(os.sched_getaffinity(0))
    lines = [
        "# demo/minilm sentence embeddings: server vs in-process",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; python {platform.python_version()}; "
        f"{cpus} CPUs",
        f"- command: `.venv/bin/python bench/embeddings.py --sentences {args.sentences}`",
        f"- server: POST /v1/predictions, {CONCURRENCY} in flight, one sentence each, recorded; "
        f"{manifest.replicas.max} replica(s) (all up before timing), max_batch_size {batch}, "
        f"max_delay_ms {manifest.batching.max_delay_ms}: **{served.rate:,.0f} sentences/s**; "
        f"mean batch formed {served.mean_batch:.1f}",
        f"- in-process, batches of {batch}, torch on {cpus} CPUs: {local:,.0f} sentences/s",
        f"- in-process, batches of {formed} (the server's mean): {local_formed:,.0f} sentences/s",
        f"- **ratio server / in-process at batch {batch}: {served.rate / local:.2f}x**; "
        f"at batch {formed}: {served.rate / local_formed:.2f}x",
        f"- the client itself burned {served.client_cpu_s:.2f} of the "
        f"{served.busy_cpu_s:.2f} CPU-seconds the machine spent busy during the served run "
        f"({served.client_cpu_s / served.busy_cpu_s:.0%}), CPU the in-process run had for "
        "the model",
        "",
    ]
    (ROOT / "bench" / "RESULTS-embeddings.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
