"""Dispatch a deployment's queued jobs to its replicas in batches; replace a replica that dies."""

from __future__ import annotations

import asyncio
import logging
import time

from foretell.errors import ForetellError, ModelLoadFailed, WorkerCrashed
from foretell.manifest import Batching
from foretell.scheduler.job import Job
from foretell.workers import Replica

log = logging.getLogger(__name__)


class Scheduler:
    """Owns one deployment's queue and one dispatch loop per attached replica."""

    def __init__(self, model: str, batching: Batching) -> None:
        self.model = model
        self.batching = batching
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._loops: set[asyncio.Task[None]] = set()
        self._failure: ForetellError | None = None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job) -> None:
        """Queue a job; if every replica is gone, fail it at once instead of letting it hang."""
        if self._failure is not None:
            job.result.set_exception(self._failure)
            return
        self._queue.put_nowait(job)

    def attach(self, replica: Replica) -> None:
        """Start feeding a ready replica."""
        task = asyncio.create_task(self._serve(replica), name=f"dispatch {self.model}")
        self._loops.add(task)
        task.add_done_callback(self._loops.discard)

    async def close(self) -> None:
        for task in list(self._loops):
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)

    async def _serve(self, replica: Replica) -> None:
        while True:
            batch = await self._next_batch()
            for job in batch:
                job.on_start()
            try:
                outcomes = await replica.predict([job.input for job in batch])
            except WorkerCrashed as exc:
                for job in batch:
                    if not job.result.done():
                        job.result.set_exception(exc)
                if not await self._replace(replica):
                    return
                continue
            for job, outcome in zip(batch, outcomes, strict=True):
                if not job.result.done():
                    job.result.set_result(outcome)

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
                    job = await asyncio.wait_for(self._queue.get(), remaining)
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
        log.warning("replica of %s died; starting a new one", self.model)
        try:
            await replica.start()
        except ModelLoadFailed as exc:
            log.error("could not replace the replica of %s: %s", self.model, exc.message)
            if len(self._loops) <= 1:
                self._fail_all(exc)
            return False
        return True

    def _fail_all(self, exc: ForetellError) -> None:
        self._failure = exc
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.result.done():
                job.result.set_exception(exc)
