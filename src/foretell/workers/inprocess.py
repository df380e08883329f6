"""A replica on a thread of the server process: no IPC, for runtimes that release the GIL.

Measured on demo/digits (an ONNX MLP, 14 us per call): a round trip to a worker process costs
about 0.1 ms, seven times the model itself, while onnxruntime computes with the GIL released, so
a thread keeps the event loop free just as a process would. A model whose batches take less
than INLINE_BELOW_S to run runs on the event loop itself: handing it to a thread and back would
cost more than it blocks the loop. The rule times the model's own run (its CPU on the replica's
thread, the time it held the loop when inline): a time taken around the await would include the
wait for a busy loop to come back to the batch, which under load is milliseconds whatever the
model, and the rule would never fire. A model that streams never runs inline once seen to: its
items come as it computes them, however long that takes.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from foretell.errors import ModelLoadFailed, WorkerCrashed
from foretell.manifest import ModelVersion, Signature
from foretell.runtimes.base import LoadedModel
from foretell.workers.child import Loader, load_model, run_batch
from foretell.workers.logs import LOGS_CAP, this_thread
from foretell.workers.protocol import Chunk, Outcome
from foretell.workers.streams import Live

INLINE_BELOW_S = 0.0005
_EWMA_WEIGHT = 0.2
_batch_ids = itertools.count(1)


class ThreadReplica:
    """Loads the model into this process and runs its batches on a thread of its own."""

    def __init__(
        self, version: ModelVersion, load: Loader = load_model, logs_cap: int = LOGS_CAP
    ) -> None:
        """`load` replaces the runtime's loader: for test doubles of a model; `logs_cap` is the
        characters of one input's prints kept (max_prediction_logs_chars)."""
        self.version = version
        self._load = load
        self._logs_cap = logs_cap
        self._streams = False  # its model was seen to stream: never inline
        self._batch_id = 0
        self._on_chunk: Callable[[Chunk], None] | None = None
        self._stop: threading.Event | None = None  # the running batch's streams' (Live.stop)
        self.setup_time = 0.0
        self._model: LoadedModel | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._batch_s: float | None = None  # the model's recent batch time; None until timed
        self.on_exit: Callable[[], None] = lambda: None  # a thread never dies on its own

    @property
    def alive(self) -> bool:
        return self._model is not None

    async def start(self) -> Signature:
        await self.stop()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"foretell-{self.version.ref}")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        timeout = self.version.manifest.timeouts.setup_s
        try:
            async with asyncio.timeout(timeout):
                model = await loop.run_in_executor(self._thread, self._load, self.version)
        except TimeoutError:
            await self.stop()
            reason = f"setup took longer than {timeout:g} s"
            raise ModelLoadFailed(str(self.version.ref), reason) from None
        self._model, self.setup_time = model, time.perf_counter() - started
        self._batch_s = None
        return model.signature

    async def predict(
        self, inputs: Sequence[dict[str, Any]], on_chunk: Callable[[Chunk], None] | None = None
    ) -> list[Outcome]:
        """Run one batch. With `on_chunk`, what each input prints on the replica's thread and
        the items it streams reach it on the loop as they happen, before the batch's outcomes."""
        model, thread = self._model, self._thread
        if model is None or thread is None:
            raise WorkerCrashed(str(self.version.ref), None, "the replica is not running")
        self._stop = None
        live = None if on_chunk is None else self._live(on_chunk)
        if not self._streams and self._batch_s is not None and self._batch_s < INLINE_BELOW_S:
            # Inline, what counts is how long the loop was held: a model that waits without
            # computing (on a GPU, say) holds it as surely as one that computes.
            started = time.perf_counter()
            outcomes = self._run(model, inputs, live)
            elapsed = time.perf_counter() - started
        else:
            loop = asyncio.get_running_loop()
            run = functools.partial(self._run, model, inputs, live)
            try:
                outcomes, elapsed = await loop.run_in_executor(thread, _timed, run)
            finally:
                self._on_chunk = None
        if outcomes and outcomes[0].streamed is not None:
            self._streams = True
        previous = self._batch_s
        self._batch_s = (
            elapsed if previous is None else previous + _EWMA_WEIGHT * (elapsed - previous)
        )
        return outcomes

    def _live(self, on_chunk: Callable[[Chunk], None]) -> Live:
        self._batch_id = next(_batch_ids)
        self._on_chunk = on_chunk
        loop = asyncio.get_running_loop()
        chunk = self._chunk

        def emit(sent: Chunk) -> None:
            # Queued on the loop in the order sent, so each is handled before the batch's result.
            loop.call_soon_threadsafe(chunk, sent)

        self._stop = threading.Event()
        return Live(self._batch_id, emit, self._stop)

    def _chunk(self, chunk: Chunk) -> None:
        # One of a batch whose predict was canceled (a stopping server) has nowhere to go.
        on_chunk = self._on_chunk
        if on_chunk is not None and chunk.batch_id == self._batch_id:
            on_chunk(chunk)

    def _run(
        self, model: LoadedModel, inputs: Sequence[dict[str, Any]], live: Live | None
    ) -> list[Outcome]:
        if live is None:
            # The whole server shares stdout: without a caller for them, prints are not taken.
            return run_batch(model, inputs, False)
        return run_batch(model, inputs, this_thread, live=live, logs_cap=self._logs_cap)

    def interrupt(self) -> bool:
        # A thread cannot be stopped from outside, but a batch's streams can before their next
        # item (workers.streams.drive): a generator yielding forever held the thread for good.
        # Anything else runs on to its end; its output is discarded.
        stop = self._stop
        if stop is None:
            return False
        stop.set()
        return True

    async def stop(self) -> None:
        thread, self._thread, self._model = self._thread, None, None
        if self._stop is not None:  # a stream running on: its thread ends at its next item
            self._stop.set()
        if thread is not None:
            thread.shutdown(wait=False, cancel_futures=True)


def _timed(run: Callable[[], list[Outcome]]) -> tuple[list[Outcome], float]:
    """The batch's outcomes and the seconds of CPU the model took on the thread that ran it:
    what running it inline would cost the loop.

    CPU, not wall time: on a thread, the wall time also counts the waits for the GIL, which a
    busy event loop holds for up to the 5 ms switch interval. onnxruntime computes on the
    calling thread (with more intra-op threads, the calling thread takes a share of each op)."""
    started = time.thread_time()
    outcomes = run()
    return outcomes, time.thread_time() - started
