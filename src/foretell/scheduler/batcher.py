"""The batching decision, apart from any clock or I/O: which waiting jobs leave together, and when.

The dispatcher asks `take(now)` whenever a replica is free. With `max_delay_s` 0 (the default)
whatever is waiting leaves at once, up to `max_batch_size`: a lone request never waits for a
window, and batches form from what accumulates while replicas are busy (Triton's delay 0). With
a delay, a partial batch is held until its oldest job has waited that long or the batch is full.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class Batcher(Generic[T]):
    """First come, first served; a job removed before it leaves (canceled) never runs."""

    def __init__(self, max_batch_size: int, max_delay_s: float = 0.0) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_delay_s < 0:
            raise ValueError(f"max_delay_s must not be negative, got {max_delay_s}")
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        # dicts keep insertion order and remove in O(1): the queue, with arrival times.
        self._waiting: dict[T, float] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, job: T, now: float) -> None:
        if job in self._waiting:
            raise ValueError(f"{job!r} is already waiting")
        self._waiting[job] = now

    def remove(self, job: T) -> bool:
        """Take a job out of the queue; False when it is not waiting (already left, or never)."""
        return self._waiting.pop(job, None) is not None

    def position(self, job: T) -> int | None:
        """0 for the next job to leave; None when it is not waiting."""
        if job not in self._waiting:
            return None
        for index, waiting in enumerate(self._waiting):
            if waiting == job:
                return index
        return None  # unreachable: membership was checked above

    def take(self, now: float) -> list[T]:
        """The batch that leaves now, oldest first; empty when nothing should leave yet."""
        if self.wait_s(now) > 0:
            return []
        batch: list[T] = []
        for job in self._waiting:
            batch.append(job)
            if len(batch) == self.max_batch_size:
                break
        for job in batch:
            del self._waiting[job]
        return batch

    def take_all(self) -> list[T]:
        """Empty the queue, oldest first (every replica is gone: fail what waits)."""
        jobs = list(self._waiting)
        self._waiting.clear()
        return jobs

    def oldest(self) -> float | None:
        """When the job that has waited longest arrived; None when nothing waits."""
        return next(iter(self._waiting.values()), None)

    def wait_s(self, now: float) -> float:
        """Seconds until `take` returns a batch: 0 when one is due, inf when nothing waits."""
        if not self._waiting:
            return float("inf")
        if len(self._waiting) >= self.max_batch_size or self.max_delay_s == 0:
            return 0.0
        oldest = next(iter(self._waiting.values()))
        return max(0.0, oldest + self.max_delay_s - now)
