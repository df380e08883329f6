"""A running prediction's progress: its stream readers woken as it changes, its growth saved."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from foretell.domain import OutputStream, Prediction, WebhookEventName
from foretell.store import PredictionStore
from foretell.webhooks import Outbox
from foretell.workers import Chunk

log = logging.getLogger(__name__)


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

    def saved(self, p: Prediction, store: PredictionStore, outbox: Outbox, now: float) -> None:
        """Save the running record `p` as it grew (queued for the next commit), with its
        webhook's `output` and `logs` events of what grew since the last save, in the same
        write; what grows from now on is the next save's."""
        self.tick, self.saved_at = None, now
        names: list[WebhookEventName] = []
        if p.webhook is not None:
            if self.output:
                names.append("output")
            if self.logs:
                names.append("logs")
        self.logs = self.output = False
        made = outbox.events(p, *names, progress=True) if names else []
        if not made:
            store.update_soon(p)
            return
        write = store.write(p, new=False, events=made, on_commit=outbox.on_commit(made))
        write.add_done_callback(_written)


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


def add_logs(p: Prediction, text: str, cap: int) -> bool:
    """Add `text` to the record's logs up to `cap` characters in all, the rest dropped with one
    note saying so; whether they were cut (then nothing more is to be added)."""
    room = cap - len(p.logs)
    if len(text) <= room:
        p.logs += text
        return False
    kept = text[: max(room, 0)]
    newline = "" if not kept or kept.endswith("\n") else "\n"
    p.logs += (
        f"{kept}{newline}[foretell] logs cut: more than {cap} characters "
        "(max_prediction_logs_chars)\n"
    )
    return True


def _written(write: asyncio.Future[None]) -> None:
    # A progress save that failed is not the prediction's end: the next save, or its terminal
    # write, writes the record again (and says so if that fails); ClaimLost is found there too.
    if not write.cancelled() and (error := write.exception()) is not None:
        log.warning("saving a running prediction's progress failed: %r", error)
