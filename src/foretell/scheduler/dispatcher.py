"""Dispatch a deployment's queued jobs to its replicas in batches; replace a replica that dies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from foretell import metrics
from foretell.errors import ForetellError, WorkerCrashed
from foretell.manifest import Batching
from foretell.scheduler.job import Job
from foretell.workers import Outcome, Replica

log = logging.getLogger(__name__)

RESTART_ATTEMPTS = 3
RESTART_BACKOFF_S = 1.0


class Scheduler:
    """Owns one deployment's queue and one dispatch loop per attached replica.

    When the last replica is gone for good, every queued and later job fails at once and
    `on_unavailable` says why, so nothing waits forever on a model that cannot run."""

    def __init__(
        self,
        model: str,
        batching: Batching,
        on_unavailable: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.model = model
        self.batching = batching
        self._on_unavailable = on_unavailable
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._loops: set[asyncio.Task[None]] = set()
        self._serving = 0
        self._closing = False
        self._failure: ForetellError | None = None
        self._batch_sizes = metrics.BATCH_SIZE.labels(model)
        self._restarts = metrics.RESTARTS.labels(model)

    def submit(self, job: Job) -> None:
        """Queue a job; if every replica is gone, fail it at once instead of letting it hang."""
        if self._failure is not None:
            job.result.set_exception(self._failure)
            return
        self._queue.put_nowait(job)

    def attach(self, replica: Replica) -> None:
        """Start feeding a ready replica."""
        self._serving += 1
        task = asyncio.create_task(self._serve(replica), name=f"dispatch {self.model}")
        self._loops.add(task)
        task.add_done_callback(self._loops.discard)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._loops):
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)

    async def _serve(self, replica: Replica) -> None:
        try:
            while True:
                # Jobs canceled while the batch window was open must not start.
                batch = [job for job in await self._next_batch() if not job.canceled]
                if batch and not await self._run(replica, batch):
                    return
        finally:
            self._serving -= 1
            if self._serving == 0 and not self._closing:
                reason = (
                    f"every replica of model '{self.model}' died and could not be restarted; "
                    "see the server log"
                )
                self._fail_all(WorkerCrashed(self.model, None, reason))
                self._on_unavailable(reason)

    async def _run(self, replica: Replica, batch: list[Job]) -> bool:
        """Run one batch; False when the replica is gone and could not be replaced."""
        self._batch_sizes.observe(len(batch))
        for job in batch:
            job.on_start()
        try:
            outcomes = await replica.predict([job.input for job in batch])
            _check_count(self.model, outcomes, batch)
        except Exception as exc:
            error = exc if isinstance(exc, ForetellError) else _dispatch_error(self.model, exc)
            for job in batch:
                if not job.result.done():
                    job.result.set_exception(error)
            return await self._replace(replica)
        for job, outcome in zip(batch, outcomes, strict=True):
            if not job.result.done():
                job.result.set_result(outcome)
        return True

    async def _next_batch(self) -> list[Job]:
        """The first live job, then whatever else arrives within max_delay_ms, up to the limit."""
        batch = [await self._next_live()]
        deadline = time.monotonic() + self.batching.max_delay_ms / 1000
        while len(batch) < self.batching.max_batch_size:
            if not self._queue.empty():
                job = self._queue.get_nowait()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        job = await self._queue.get()
                except TimeoutError:
                    break
            if not job.canceled:
                batch.append(job)
        return batch

    async def _next_live(self) -> Job:
        while True:
            job = await self._queue.get()
            if not job.canceled:
                return job

    async def _replace(self, replica: Replica) -> bool:
        for attempt in range(1, RESTART_ATTEMPTS + 1):
            log.warning("replica of %s is gone; starting a new one (try %d)", self.model, attempt)
            self._restarts.inc()
            try:
                await replica.start()
            except Exception as exc:
                log.error("could not replace the replica of %s: %s", self.model, exc)
                await asyncio.sleep(RESTART_BACKOFF_S * attempt)
            else:
                return True
        return False

    def _fail_all(self, exc: ForetellError) -> None:
        self._failure = exc
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.result.done():
                job.result.set_exception(exc)


def _check_count(model: str, outcomes: list[Outcome], batch: list[Job]) -> None:
    if len(outcomes) != len(batch):
        reason = f"the replica of '{model}' answered {len(outcomes)} outcomes for {len(batch)}"
        raise WorkerCrashed(model, None, reason)


def _dispatch_error(model: str, exc: Exception) -> WorkerCrashed:
    log.exception("dispatch to a replica of %s failed", model, exc_info=exc)
    return WorkerCrashed(model, None, f"sending work to a replica of '{model}' failed: {exc!r}")
