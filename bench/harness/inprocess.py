"""The in-process limit: onnxruntime's session.run called directly, one thread, no server."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harness.models import BenchModel
from harness.procs import SERVER_CORE, pinned_here

BATCH_SIZES = (1, 8, 32, 64, 128)
WARMUP_CALLS = 10


def session(path: Path) -> ort.InferenceSession:
    """A CPU session with one intra-op and one inter-op thread, as every baseline uses."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class InProcessResult:
    """session.run at one batch size: per-call latency and rows per second."""

    batch: int
    calls: int
    p50_ms: float
    rows_per_s: float


def _measure(
    sess: ort.InferenceSession, feed: dict[str, np.ndarray], seconds: float
) -> InProcessResult:
    batch = len(next(iter(feed.values())))
    for _ in range(WARMUP_CALLS):
        sess.run(None, feed)
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    while clock() - start < seconds:
        t0 = clock()
        sess.run(None, feed)
        latencies.append(clock() - t0)
    wall = clock() - start
    return InProcessResult(
        batch, len(latencies), statistics.median(latencies) * 1000, batch * len(latencies) / wall
    )


def measure(model: BenchModel, seconds: float) -> list[InProcessResult]:
    """Each batch size for `seconds`, pinned to the core the servers get, so it is comparable."""
    sess = session(model.onnx_path)
    with pinned_here(SERVER_CORE):
        return [
            _measure(sess, {model.input_name: model.rows[:batch]}, seconds) for batch in BATCH_SIZES
        ]
