"""Input files' bytes held in memory between their fetch and their prediction's end, capped.

A prediction's input files are fetched (or decoded, or read from the store) before it is queued,
and their bytes stay with it until it ends: without a cap, a queue of a thousand predictions each
naming a 100 MB URL would hold 100 GB. Here at most `concurrency` inputs are being resolved at
once, and an input whose bytes would take the held total past `limit` waits (its fetch done,
nothing else started) until predictions that hold bytes end. A single input larger than the cap
still runs, alone: the per-input limit (max_upload_bytes) is what refuses one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Inputs resolved at once: each may hold up to max_upload_bytes while it is fetched, before it
# is counted, so this bounds what the cap cannot see yet.
RESOLVING_AT_ONCE = 8


class HeldInputFiles:
    """The bytes of resolved input files that unfinished predictions hold, against a cap."""

    def __init__(self, limit: int, concurrency: int = RESOLVING_AT_ONCE) -> None:
        self.limit = limit
        self.held = 0
        self._resolving = asyncio.Semaphore(concurrency)
        self._room: list[asyncio.Future[None]] = []

    async def resolve(self, fetch: Callable[[], Awaitable[T]], size: Callable[[T], int]) -> T:
        """`fetch()`'s result once its `size(...)` bytes are counted as held; the caller gives
        them back with `release(size)` when its prediction ends."""
        async with self._resolving:
            result = await fetch()
            n = size(result)
            while self.held and self.held + n > self.limit:
                room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._room.append(room)
                try:
                    await room
                finally:
                    if room in self._room:
                        self._room.remove(room)
            self.held += n
            return result

    def release(self, n: int) -> None:
        """`n` held bytes are no longer held (their prediction ended): waiters try again."""
        if n <= 0:
            return
        self.held -= n
        waiting, self._room = self._room, []
        for room in waiting:
            if not room.done():
                room.set_result(None)
