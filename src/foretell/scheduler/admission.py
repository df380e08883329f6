"""Bounded admission: refuse work a deployment cannot start soon, and say when to come back."""

from __future__ import annotations

import asyncio
import math

from foretell import metrics
from foretell.errors import Overloaded
from foretell.manifest import Batching

_EWMA_WEIGHT = 0.2  # recent batches count most: service time drifts with load and input size


class Admission:
    """Counts unfinished predictions of one deployment against what it may hold: the running
    batches plus `max_queue_size` waiting. Refusals carry a Retry-After from observed batch time.
    `replicas` is how many may run (a range's max), not how many run now: a deployment scaled to
    zero takes its queue's worth while its first replica starts."""

    def __init__(self, model: str, batching: Batching, replicas: int) -> None:
        self.model = model
        self._batching = batching
        self.unfinished = 0
        self._idle: asyncio.Event | None = None  # set when the count falls to zero (`drained`)
        self.resize(replicas)
        self._batch_s: float | None = None
        self._gauge = metrics.UNFINISHED.labels(model)
        self._refusals = metrics.REFUSALS.labels(model)

    def resize(self, replicas: int) -> None:
        """Hold and time the queue for this many replicas from now on."""
        batching = self._batching
        self.running_capacity = replicas * batching.max_batch_size
        self.limit = self.running_capacity + batching.max_queue_size
        self._batch_size = batching.max_batch_size
        self._replicas = replicas

    def admit(self) -> None:
        """Count one more prediction, or raise Overloaded if the queue is full."""
        if self.unfinished >= self.limit:
            self._refusals.inc()
            raise Overloaded(self.model, self.limit - self.running_capacity, self.retry_after_s())
        self.unfinished += 1
        self._gauge.inc()

    def readmit(self) -> None:
        """Count a prediction accepted before a restart: it was acknowledged, so never refused."""
        self.unfinished += 1
        self._gauge.inc()

    def release(self) -> None:
        if self.unfinished > 0:
            self.unfinished -= 1
            self._gauge.dec()
            if self.unfinished == 0 and self._idle is not None:
                self._idle.set()

    async def drained(self) -> None:
        """Wait until no prediction is unfinished (one readmitted meanwhile is waited for too);
        any number may wait at once."""
        while self.unfinished:
            if self._idle is None or self._idle.is_set():
                self._idle = asyncio.Event()
            await self._idle.wait()

    def observe(self, batch_s: float) -> None:
        """Record how long a batch took on a replica."""
        if self._batch_s is None:
            self._batch_s = batch_s
        else:
            self._batch_s += _EWMA_WEIGHT * (batch_s - self._batch_s)

    def eta_s(self, position: int) -> float | None:
        """Seconds until the job at queue `position` (0 = next) should have run; None until a
        batch has been timed. Counts the waves of batches ahead of it plus its own."""
        if self._batch_s is None:
            return None
        waves = math.ceil((position // self._batch_size + 1) / self._replicas)
        return waves * self._batch_s

    def retry_after_s(self) -> int:
        """Seconds until the queue has drained enough to take one more, rounded up, at least 1."""
        if self._batch_s is None:
            return 1
        batches_ahead = math.ceil((self.unfinished - self.limit + 1) / self._batch_size)
        waves = math.ceil(max(batches_ahead, 1) / self._replicas)
        return max(1, math.ceil(waves * self._batch_s))
