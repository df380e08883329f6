"""The model glue: what foretell adds around onnxruntime per row, this tree against another src/.

    .venv/bin/python bench/glue.py [--rounds 5] [--against /tmp/base/src] [--seconds 0.5]

Each round runs one child process per tree (alternating which goes first) that loads demo/digits
and the bench/heavy MLP (harness/models.py) with foretell's onnx runtime and times, per case:
`floor`, session.run on the batch already stacked as one float32 array; `in-process`,
`run_batch(model, rows)` as a thread replica runs it (JSON-like rows in, one Outcome per row
out: stacking, the run, splitting and `tolist`); `glue`, the same with the session's run
answered from outputs computed beforehand, i.e. foretell's own work alone, without the model's
(steadier than in-process - floor on a busy machine); `replica`, `ProcessReplica.predict(rows)`
through a worker process (pickling both ways). Prints each case's median per-row µs over the
rounds and, with --against, the ratio of the two trees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

CASES = (("demo/digits", 1), ("demo/digits", 8), ("demo/digits", 64), ("bench/heavy", 64))


class _Answered:
    """A session whose run returns the first rows of outputs computed beforehand."""

    def __init__(self, outputs: list[Any]) -> None:
        self._outputs = outputs

    def run(self, names: Any, feed: dict[str, Any]) -> list[Any]:
        rows = len(next(iter(feed.values())))
        return [output[:rows] for output in self._outputs]


def _per_row_us(call: Callable[[], Any], rows: int, seconds: float) -> float:
    for _ in range(5):
        call()
    clock, calls = time.perf_counter, 0
    start = clock()
    while clock() - start < seconds or calls < 5:
        call()
        calls += 1
    return (clock() - start) / calls / rows * 1e6


async def _replica_us(version: Any, inputs: list[dict[str, Any]], seconds: float) -> float:
    from foretell.workers import ProcessReplica

    replica = ProcessReplica(version)
    await replica.start()
    try:
        for _ in range(5):
            await replica.predict(inputs)
        clock, calls = time.perf_counter, 0
        start = clock()
        while clock() - start < seconds or calls < 5:
            await replica.predict(inputs)
            calls += 1
        return (clock() - start) / calls / len(inputs) * 1e6
    finally:
        await replica.stop()


def child(seconds: float) -> None:
    """Measure every case with whichever foretell is first on the path; JSON on stdout."""
    from harness.models import digits_model, heavy_model

    from foretell.manifest import scan_repository
    from foretell.workers.child import load_model, run_batch

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        heavy = heavy_model(Path(scratch))
        digits = digits_model()
        versions = scan_repository(Path(scratch)).versions
        versions += scan_repository(ROOT / "examples" / "models").versions
        for ref, batch in CASES:
            bench = heavy if ref == "bench/heavy" else digits
            version = max(
                (v for v in versions if f"{v.owner}/{v.name}" == ref), key=lambda v: v.number
            )
            model = load_model(version)
            rows = bench.rows[:batch]
            inputs = [{bench.input_name: [row.tolist()]} for row in rows]
            session = model._session  # type: ignore[attr-defined]  # the floor: onnxruntime alone
            case = f"{ref} x{batch}"
            results[case] = {
                "floor": _per_row_us(
                    lambda s=session, r=rows, n=bench.input_name: s.run(None, {n: r}),
                    batch,
                    seconds,
                ),
                "in-process": _per_row_us(
                    lambda m=model, i=inputs: run_batch(m, i, False), batch, seconds
                ),
            }
            model._session = _Answered(session.run(None, {bench.input_name: rows}))  # type: ignore[attr-defined]
            results[case]["glue"] = _per_row_us(
                lambda m=model, i=inputs: run_batch(m, i, False), batch, seconds
            )
            if ref == "demo/digits":  # the heavy model's compute would hide the boundary
                results[case]["replica"] = asyncio.run(_replica_us(version, inputs, seconds))
    print(json.dumps(results))


def _run_child(src: Path, seconds: float) -> dict[str, dict[str, float]]:
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, __file__, "--child", "--seconds", str(seconds)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, dict[str, float]] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per case and layer")
    parser.add_argument("--against", type=Path, help="another tree's src/ to compare with")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.seconds)
        return
    trees = [("this", ROOT / "src")] + ([("against", args.against)] if args.against else [])
    samples: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name, _ in trees}
    for run in range(args.rounds):
        for name, src in trees if run % 2 == 0 else trees[::-1]:
            samples[name].append(_run_child(src, args.seconds))
        print(f"round {run + 1} of {args.rounds} done", file=sys.stderr, flush=True)

    def median(name: str, case: str, layer: str) -> float:
        return statistics.median(s[case][layer] for s in samples[name] if layer in s[case])

    print("per-row µs, medians over rounds")
    for case in samples["this"][0]:
        for layer in ("floor", "in-process", "glue", "replica"):
            if layer not in samples["this"][0][case]:
                continue
            cells = [f"{name} {median(name, case, layer):8.2f}" for name, _ in trees]
            if len(trees) == 2 and layer != "floor":
                ours, theirs = (float(c.split()[-1]) for c in cells)
                cells.append(f"this/against {ours / theirs:.2f}" if theirs > 0 else "")
            print(f"{case:18} {layer:11} " + "  ".join(cells))


if __name__ == "__main__":
    main()
