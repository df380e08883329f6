"""A thread replica runs a model inline on the event loop when the model itself is quick,
judged by the model's own time, not by how long a busy loop took to come back to the batch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from foretell.manifest import Manifest, ModelVersion, Signature
from foretell.runtimes.base import LoadedModel
from foretell.workers import ThreadReplica
from foretell.workers.inprocess import INLINE_BELOW_S

pytestmark = pytest.mark.anyio

SIGNATURE = Signature({"type": "object"}, {})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class WhereItRan:
    """Echoes each input, noting the thread that ran each batch; burns `cpu_s` of CPU first."""

    signature = SIGNATURE

    def __init__(self, cpu_s: float = 0.0) -> None:
        self.cpu_s = cpu_s
        self.threads: list[int] = []

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        self.threads.append(threading.get_ident())
        until = time.thread_time() + self.cpu_s
        while time.thread_time() < until:
            pass
        return [dict(item) for item in batch]


def version() -> ModelVersion:
    manifest = Manifest.model_construct(runtime="onnx", isolation="thread")
    return ModelVersion("acme", "quick", 1, Path("quick"), manifest)


async def hog_the_loop(seconds: float) -> None:
    """Another request's work on the loop: it holds the loop (and the GIL) for `seconds`."""
    await asyncio.sleep(0)
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


async def run_beside_a_busy_loop(model: WhereItRan, batches: int) -> None:
    def load(_: ModelVersion) -> LoadedModel:
        return model

    replica = ThreadReplica(version(), load)
    await replica.start()
    try:
        for i in range(batches):
            # The loop is busy for 3 ms while the batch is out: a wall time around the await
            # is over INLINE_BELOW_S however quick the model is.
            outcomes, _ = await asyncio.gather(replica.predict([{"i": i}]), hog_the_loop(0.003))
            assert [o.output for o in outcomes] == [{"i": i}]
    finally:
        await replica.stop()


async def test_a_quick_model_runs_inline_even_when_the_loop_is_busy() -> None:
    model = WhereItRan()
    await run_beside_a_busy_loop(model, 5)
    loop_thread = threading.get_ident()
    # The first batch is timed on the replica's thread; every later one runs on the loop's.
    assert model.threads[0] != loop_thread
    assert model.threads[1:] == [loop_thread] * 4


async def test_a_slow_model_stays_on_its_thread() -> None:
    model = WhereItRan(cpu_s=INLINE_BELOW_S * 2)
    await run_beside_a_busy_loop(model, 3)
    assert threading.get_ident() not in model.threads
