"""Sentence-embedding throughput of demo/minilm: through `foretell serve` at 16 concurrent
requests, against the same model called in-process at the server's batch size, in one run.

    .venv/bin/python bench/embeddings.py [--sentences 512]

Prints sentences/s for both and their ratio, and writes bench/RESULTS-embeddings.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from latency import running_server

from foretell.manifest import scan_repository
from foretell.runtimes.registry import get_runtime

ROOT = Path(__file__).resolve().parents[1]
MODEL = "demo/minilm"
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


def in_process(texts: list[str], batch: int) -> float:
    """Sentences/s of the runtime's own model, batches of `batch`, no server."""
    (version,) = [
        v for v in scan_repository(ROOT / "examples/models").versions if v.name == "minilm"
    ]
    model = get_runtime("transformers").load(version)
    model.predict([{"text": t} for t in texts[:batch]])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.predict([{"text": t} for t in texts[i : i + batch]])
    return len(texts) / (time.perf_counter() - started)


async def through_server(base_url: str, headers: dict[str, str], texts: list[str]) -> float:
    """Sentences/s through POST /v1/predictions, CONCURRENCY requests in flight."""
    todo = list(texts)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:

        async def worker() -> None:
            while todo:
                text = todo.pop()
                body = {"model": MODEL, "input": {"text": text}}
                response = await client.post("/v1/predictions", json=body)
                assert response.json()["status"] == "succeeded", response.text

        warm = {"model": MODEL, "input": {"text": "warm up"}}
        await client.post("/v1/predictions", json=warm)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sentences", type=int, default=512)
    args = parser.parse_args()
    texts = sentences(args.sentences)
    manifest = ROOT / "examples/models/demo/minilm/1/foretell.yaml"
    batch = 32 if "max_batch_size: 32" in manifest.read_text() else 1
    local = in_process(texts, batch)
    from latency import HEADERS

    with running_server() as base_url:
        served = asyncio.run(through_server(base_url, {**HEADERS, "Prefer": "wait=60"}, texts))
    ratio = served / local
    lines = [
        "# demo/minilm sentence embeddings: server vs in-process",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; python {platform.python_version()}",
        f"- command: `.venv/bin/python bench/embeddings.py --sentences {args.sentences}`",
        f"- in-process: the runtime's model, batches of {batch}: {local:,.0f} sentences/s",
        f"- server: POST /v1/predictions, {CONCURRENCY} in flight, one sentence each, "
        f"recorded: {served:,.0f} sentences/s",
        f"- ratio server / in-process: {ratio:.2f}x",
        "",
    ]
    (ROOT / "bench" / "RESULTS-embeddings.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
