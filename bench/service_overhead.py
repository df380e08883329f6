"""CPU and cyclic garbage per prediction on the waiting caller's path, without HTTP.

Drives `PredictionService.create(NewPrediction(..., wait_s=10))` for demo/digits (a thread
replica, the shipped ONNX model) on a SQLite store, from `--callers` concurrent callers, and
renders each answer as the native route's JSON, as the native recorded route does behind
`Prefer: wait` (HTTP aside), and prints per prediction:

- loop µs: CPU of the event loop's thread (the service, scheduler and waiting callers);
- process µs: CPU of the whole process (the replica's onnxruntime and the store's writer too);
- garbage: objects the cyclic collector freed (automatic collection off during a round, one
  `gc.collect()` after it), i.e. what reference counting alone could not free.

With `--base SRC` it also runs the code under SRC (e.g. /tmp/base/src, the code before) in a
child process, alternating rounds between the two so that drift in the machine hits both alike,
and prints each one's median and the ratio:

    .venv/bin/python bench/service_overhead.py --base /tmp/base/src [--requests 3000 --rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "models" / "demo" / "digits"
# sklearn's load_digits().data[0] (a zero), as bench/compare.py sends.
ROW = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4]
ROW += [12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10]
ROW += [12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


async def _rounds(requests: int, rounds: int, callers: int) -> list[dict[str, float]]:
    import orjson

    from foretell.api.dialects.native import render as native
    from foretell.config import Settings
    from foretell.domain import ModelRef, PredictionStatus
    from foretell.service import NewPrediction, PredictionService
    from foretell.store import PredictionStore
    from foretell.webhooks import Outbox

    def render(p: Any) -> str:
        return "{}"

    with tempfile.TemporaryDirectory() as tmp:
        repository = Path(tmp) / "repository"
        shutil.copytree(DIGITS, repository / "demo" / "digits")
        settings = Settings(repository=repository, data_dir=Path(tmp) / "data")
        store = await PredictionStore.open(settings.database_url, lease_s=settings.lease_s)
        outbox = Outbox.for_settings(store.outbox, settings, render)
        await outbox.start()
        from foretell.manifest import scan_repository

        service = PredictionService.for_repository(
            scan_repository(repository), store, outbox, settings
        )
        await service.start()
        service.deploy(concurrency=1)
        await service.deployed()
        request = NewPrediction(
            model=ModelRef.parse("demo/digits"), input={"features": [ROW]}, wait_s=10.0
        )
        loop_thread = time.thread_time

        async def caller(count: int) -> None:
            for _ in range(count):
                p = await service.create(request)
                assert p.status is PredictionStatus.SUCCEEDED, p.error
                orjson.dumps(native.prediction(p), option=orjson.OPT_SERIALIZE_NUMPY)

        results = []
        try:
            await asyncio.gather(*(caller(20) for _ in range(callers)))  # warm up
            for _ in range(rounds):
                gc.collect()
                gc.disable()
                loop0, proc0, wall0 = loop_thread(), time.process_time(), time.perf_counter()
                share, extra = divmod(requests, callers)
                await asyncio.gather(*(caller(share + (i < extra)) for i in range(callers)))
                loop1, proc1, wall1 = loop_thread(), time.process_time(), time.perf_counter()
                garbage = gc.collect()
                gc.enable()
                results.append(
                    {
                        "loop_us": (loop1 - loop0) / requests * 1e6,
                        "process_us": (proc1 - proc0) / requests * 1e6,
                        "wall_us": (wall1 - wall0) / requests * 1e6,
                        "garbage": garbage / requests,
                    }
                )
        finally:
            await service.close(grace_s=5)
            await service.undeploy()
            await outbox.close()
            await store.close()
    return results


def _child(src: str | None, args: argparse.Namespace) -> list[dict[str, float]]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    command = [sys.executable, __file__, "--child", "--requests", str(args.requests)]
    command += ["--rounds", "1", "--callers", str(args.callers)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _summary(name: str, rows: list[dict[str, float]]) -> dict[str, float]:
    keys = ("loop_us", "process_us", "wall_us", "garbage")
    medians = {k: statistics.median(r[k] for r in rows) for k in keys}
    shown = "  ".join(f"{k} {medians[k]:8.1f}" for k in keys)
    print(f"{name:>6}: {shown}   ({len(rows)} rounds)")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="predictions a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callers", type=int, default=64, help="concurrent waiting callers")
    parser.add_argument("--base", help="src folder of the code to compare against")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rows = asyncio.run(_rounds(args.requests, args.rounds, args.callers))
        print(json.dumps(rows))
        return
    runs: dict[str, list[dict[str, float]]] = {"new": []}
    if args.base:
        runs["base"] = []
    for _ in range(args.rounds):
        for name in runs:
            src = args.base if name == "base" else str(ROOT / "src")
            runs[name].extend(_child(src, args))
    medians = {name: _summary(name, rows) for name, rows in runs.items()}
    if args.base:
        new, base = medians["new"], medians["base"]
        print(
            f"new/base: loop {new['loop_us'] / base['loop_us']:.2f}x, "
            f"process {new['process_us'] / base['process_us']:.2f}x, "
            f"garbage {new['garbage']:.1f} vs {base['garbage']:.1f} objects a prediction"
        )


if __name__ == "__main__":
    main()
