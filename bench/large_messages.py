"""The event loop's longest stall while a large file crosses a replica process, this tree
against another src/, and what a small batch's round trip costs in each.

    .venv/bin/python bench/large_messages.py [--against /tmp/base/src] [--mb 50] [--small 10000]

Each tree runs in its own child process (alternating which goes first over --rounds) that starts
a ProcessReplica whose model is a double defined here: `measures` (a batch holding one --mb MB
FileData, answered with its size), `makes` (a small batch answered with a --mb MB FileData) and
`echo` (--small round trips of one small input, `{"features": [[5.1, 3.5, 1.4, 0.2]]}`). A task
asks to wake every millisecond meanwhile; the longest gap between its wake-ups is how long the
loop, i.e. every other request on the server, waited. Prints medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"features": [[5.1, 3.5, 1.4, 0.2]]}


class _Double:
    """A loaded model's stand-in, by name (see the module's docstring)."""

    def __init__(self, name: str) -> None:
        from foretell.manifest import Signature

        self.name = name
        self.signature = Signature({"type": "object"}, {})

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        from foretell.domain.files import FileData

        if self.name == "measures":
            return [{"size": len(item["file"].data)} for item in batch]
        if self.name == "makes":
            return [
                FileData("out.bin", "application/octet-stream", bytes(i["size"])) for i in batch
            ]
        return [dict(item) for item in batch]


async def _timed(work: Awaitable[Any]) -> tuple[float, float]:
    longest, finished = 0.0, asyncio.Event()

    async def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not finished.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await work
    took = time.perf_counter() - started
    finished.set()
    await ticker
    return took * 1e3, longest * 1e3


async def _measure(mb: int, small: int) -> dict[str, float]:
    from foretell.domain.files import FileData
    from foretell.manifest import Manifest, ModelVersion
    from foretell.workers import ProcessReplica

    command = (sys.executable, __file__, "--worker")
    results: dict[str, float] = {}

    def replica(name: str) -> ProcessReplica:
        manifest = Manifest.model_construct(runtime="python")
        return ProcessReplica(ModelVersion("bench", name, 1, Path(name), manifest), command)

    size = mb << 20
    big = FileData("in.bin", "application/octet-stream", bytes(size))
    for name, batch in (("measures", [{"file": big}]), ("makes", [{"size": size}])):
        worker = replica(name)
        await worker.start()
        try:
            await worker.predict(batch)  # warm: the first large allocations
            took, longest = await _timed(worker.predict(batch))
        finally:
            await worker.stop()
        direction = "in" if name == "measures" else "out"
        results[f"{mb} MB {direction}: call ms"] = took
        results[f"{mb} MB {direction}: longest stall ms"] = longest
    worker = replica("echo")
    await worker.start()
    try:
        for _ in range(200):
            await worker.predict([SMALL])
        started = time.perf_counter()
        for _ in range(small):
            await worker.predict([SMALL])
        results["small round trip us"] = (time.perf_counter() - started) / small * 1e6
    finally:
        await worker.stop()
    return results


def _run_child(src: Path, mb: int, small: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, __file__, "--child", "--mb", str(mb), "--small", str(small)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--small", type=int, default=10000, help="small round trips per round")
    parser.add_argument("--against", type=Path, help="another tree's src/ to compare with")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        from foretell.workers.child import main as worker_main

        worker_main(args.worker, lambda version: _Double(version.name))
        return
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.mb, args.small))))
        return
    trees = [("this", ROOT / "src")] + ([("against", args.against)] if args.against else [])
    samples: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    for run in range(args.rounds):
        for name, src in trees if run % 2 == 0 else trees[::-1]:
            samples[name].append(_run_child(src, args.mb, args.small))
        print(f"round {run + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    print("medians over rounds: " + "  ".join(f"{name} ({src})" for name, src in trees))
    for key in samples["this"][0]:
        cells = [f"{statistics.median(s[key] for s in samples[name]):9.1f}" for name, _ in trees]
        print(f"{key:32} " + "  ".join(cells))


if __name__ == "__main__":
    main()
