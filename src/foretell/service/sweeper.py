"""One timer for the whole loop: deadlines and waits expire a tick at a time."""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# How late an entry may expire: waits and deadlines are whole seconds, or a few hundred ms.
TICK_S = 0.02


class Sweeper:
    """Entries due in the same tick share a bucket, and the loop holds one timer, for the
    earliest bucket: adding and discarding an entry is a dict operation, where a timer handle
    per prediction and per waiting caller (asyncio's `call_later`, `asyncio.timeout`) cost an
    object, a heap push and a cancel each. An entry expires at most one tick late."""

    def __init__(self, tick_s: float = TICK_S) -> None:
        self._tick_s = tick_s
        self._buckets: dict[int, dict[Any, Callable[[Any], None]]] = {}
        self._ticks: list[int] = []  # a heap of the buckets' ticks
        self._timer: asyncio.TimerHandle | None = None
        self._armed: int | None = None  # the tick the timer fires at
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, entry: T, expire: Callable[[T], None], delay_s: float) -> int:
        """Call `expire(entry)` once `delay_s` has passed, unless it is discarded first;
        returns the entry's tick, which `discard` needs."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        tick = math.ceil((loop.time() + delay_s) / self._tick_s)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = {}
            heapq.heappush(self._ticks, tick)
            if self._armed is None or tick < self._armed:
                self._arm(loop, tick)
        bucket[entry] = expire
        return tick

    def discard(self, tick: int, entry: object) -> None:
        """`entry` no longer expires (nothing if it already has)."""
        bucket = self._buckets.get(tick)
        if bucket is not None:
            bucket.pop(entry, None)  # an emptied bucket stays until its tick: no re-arming

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def _arm(self, loop: asyncio.AbstractEventLoop, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed = tick
        self._timer = loop.call_at(tick * self._tick_s, self._sweep)

    def _sweep(self) -> None:
        loop = self._loop
        assert loop is not None
        assert self._armed is not None
        # The loop may run a timer up to its clock's resolution early: what it was armed for
        # is due all the same.
        due = max(self._armed, math.floor(loop.time() / self._tick_s))
        self._timer = self._armed = None
        while self._ticks and self._ticks[0] <= due:
            bucket = self._buckets.pop(heapq.heappop(self._ticks))
            for entry, expire in bucket.items():
                try:
                    expire(entry)
                except Exception:  # one entry's failure must not strand the others
                    log.exception("expiring %r failed", entry)
        if self._ticks:
            self._arm(loop, self._ticks[0])
