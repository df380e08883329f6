"""The retention sweep's schedule: run it every interval until closed, surviving its failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("foretell.files")

MAX_INTERVAL_S = 60.0


def interval_for(retention_s: float) -> float:
    """How often to sweep: a quarter of the retention, at most a minute, so a file outlives
    its retention by little."""
    return min(MAX_INTERVAL_S, retention_s / 4)


class Schedule:
    """Runs `sweep` every `interval_s` seconds in a task of its own, from `start` to `close`.
    A failed sweep (the store down, a blob store unreachable) is logged and tried again."""

    def __init__(self, sweep: Callable[[], Awaitable[Any]], interval_s: float) -> None:
        self._sweep = sweep
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="foretell-sweep")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._sweep()
            except Exception:
                log.exception("the stored files' retention sweep failed; trying again")
            await asyncio.sleep(self.interval_s)
