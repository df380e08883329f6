"""A running prediction's progress: its stream readers woken as it changes, its growth saved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from foretell.domain import OutputStream, Prediction
from foretell.workers import Chunk


class Notifier:
    """Wakes every reader awaiting `changed()` at once: one future they share, made when the
    first of them waits, so a prediction nobody streams holds none."""

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    async def changed(self) -> None:
        """Until the next `wake`. A reader that leaves (canceled) takes nothing from others."""
        future = self._future
        if future is None:
            future = self._future = asyncio.get_running_loop().create_future()
        await asyncio.shield(future)

    def wake(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)


class Progress:
    """What a streaming prediction's task keeps between its saves of progress: when it last
    saved, the save due (its sweeper tick), and what grew since (the webhook's `logs` and
    `output` events). Made on its first chunk: a prediction that streams nothing has none."""

    __slots__ = ("logs", "output", "save", "saved_at", "tick")

    def __init__(self, save: Callable[[], None]) -> None:
        # The task's save, until it ends (then None: no cycle is left through the sweeper).
        self.save: Callable[[], None] | None = save
        self.saved_at = float("-inf")  # the clock's time of its last save
        self.tick: int | None = None  # a save is due on this sweeper tick
        self.logs = False  # its logs grew since the last save
        self.output = False  # its output grew since the last save

    def due(self) -> None:
        """Its save is due (the sweeper's expiry)."""
        self.tick = None
        if self.save is not None:
            self.save()


def grow(p: Prediction, chunk: Chunk) -> bool:
    """Add `chunk`'s items to the record's output as its stream says (text joined, items
    appended); whether it grew."""
    if not chunk.items or chunk.mode is None:
        return False
    if chunk.mode is OutputStream.TEXT:
        text = "".join(i if isinstance(i, str) else str(i) for i in chunk.items)
        p.output = p.output + text if isinstance(p.output, str) else text
    elif isinstance(p.output, list) and p.streamed is OutputStream.ITEMS:
        p.output.extend(chunk.items)  # in place: each save snapshots it as it is
    else:
        p.output = list(chunk.items)
    p.streamed = chunk.mode
    return True
