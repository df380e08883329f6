"""Following a prediction's event stream: live from its task here, else from the store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from foretell.domain import Prediction, PredictionStatus
from foretell.domain.access import Principal
from foretell.errors import (
    InvalidStreamPosition,
    PredictionNotFound,
    RecordNotSaved,
    StoreUnavailable,
)
from foretell.service.stream import StreamEvent, StreamPosition, cut, events_since
from foretell.service.task import PredictionTask

STOPPING = "the server is stopping; reconnect with the last event's id to resume"
TAKEN_OVER = "another API process took this prediction over; reconnect to resume"


class Following:
    """Makes a prediction's event streams. A stream reads the record at its own pace: the
    events since its position, then a wait for the next change. A reader that falls behind
    holds no buffer (it is given the record's growth as one event when it comes back), so none
    can block the model or another stream; a reader that takes nothing is cut by the API."""

    def __init__(
        self,
        live: Callable[[str], PredictionTask | None],
        read: Callable[[str], Awaitable[Prediction | None]],
        pause: Callable[[str, float], Awaitable[None]],
        poll_s: float,
        stopping: Callable[[], bool],
    ) -> None:
        self._live = live  # the task running a prediction here, if one does
        self._read = read  # the stored record
        self._pause = pause  # until a prediction another process runs may have changed
        self._poll_s = poll_s
        self._stopping = stopping

    async def stream(
        self, prediction_id: str, viewer: Principal, since: StreamPosition | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Its events after `since` (None: all), as they happen, until it ended. Raises, before
        any event: PredictionNotFound (also another owner's), InvalidStreamPosition (`since`
        past what the record holds)."""
        since = since or StreamPosition()
        task = self._live(prediction_id)
        if task is not None and not task.lost:
            if not viewer.owns(task.prediction.created_by):
                raise PredictionNotFound(prediction_id)
            events_since(task.prediction, since)  # a position past it is refused now
            return self._following(task, since)
        stored = await self._read(prediction_id)
        if stored is None or not viewer.owns(stored.created_by):
            raise PredictionNotFound(prediction_id)
        try:
            events_since(stored, since)
        except InvalidStreamPosition:
            if not _behind(stored, stored.started_at):
                raise
        return self._polling(stored, since)

    async def _following(
        self, task: PredictionTask, since: StreamPosition
    ) -> AsyncIterator[StreamEvent]:
        """A prediction this process runs: woken by its task at each change; its end's events
        only once its record is durable."""
        p = task.prediction
        while True:
            if task.abandoned:
                yield cut(STOPPING)
                return
            if task.ended:
                try:
                    await task.durable()
                except (RecordNotSaved, StoreUnavailable) as unsaved:
                    yield cut(unsaved.message)
                    return
                if not task.lost:
                    while True:  # in batches (stream.BATCH_CHARS) until its done is sent
                        try:
                            events, since = events_since(p, since)
                        except InvalidStreamPosition as moved:  # its end took output back
                            yield cut(moved.message)
                            return
                        if not events:
                            return
                        for event in events:
                            yield event
            if task.lost:  # another process runs it now: its stored record is the one
                stored = await self._read(p.id)
                if stored is None:
                    yield cut(TAKEN_OVER)
                    return
                async for event in self._polling(stored, since, taken_over=True):
                    yield event
                return
            try:
                events, since = events_since(p, since)
            except InvalidStreamPosition as moved:  # a run taken over here starts anew
                yield cut(moved.message)
                return
            if events:
                for event in events:
                    yield event
                continue  # it may have changed while they were taken
            await task.changed()

    async def _polling(
        self, p: Prediction, since: StreamPosition, *, taken_over: bool = False
    ) -> AsyncIterator[StreamEvent]:
        """A prediction no task of this process runs: its stored record, read every poll_s
        (sooner on its end's notice) until it ended. `taken_over`: `since` is a position of
        this process's run, which another process took over and runs anew."""
        run = p.started_at  # a re-run (after a takeover) starts anew: its output is not this
        while True:
            try:
                events, since = events_since(p, since)
            except InvalidStreamPosition as moved:
                if taken_over or not _behind(p, run):  # a re-run or its end took it back
                    yield cut(moved.message)
                    return
                events = []  # its process streamed more than it saved yet: read it again
            for event in events:
                yield event
            if events:  # the record may hold more than one batch: read it on, then wait
                continue
            if p.status.terminal:
                return
            if self._stopping():
                yield cut(STOPPING)
                return
            task = self._live(p.id)
            if task is not None and not task.lost:  # taken over by this process
                async for event in self._following(task, since):
                    yield event
                return
            await self._pause(p.id, self._poll_s)
            found = await self._read(p.id)
            if found is None:
                return
            p = found


def _behind(p: Prediction, run: datetime | None) -> bool:
    """Whether a stored record short of a reader's position may only lag it: the process
    running it streamed past its last save (saved every progress_interval_s), and a reader
    it served resumes here. Not once it ended (its end is durable before it streams) or went
    back to pending, nor when another run started (its output starts anew)."""
    return p.status is PredictionStatus.PROCESSING and p.started_at == run
