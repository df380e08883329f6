"""A traced prediction's spans (foretell.tracing), made once it ended and its record was written,
under the span of the request that created it."""

from __future__ import annotations

import asyncio
import contextlib
import time

from foretell.config import Settings
from foretell.service.task import PredictionTask
from foretell.tracing import Tracing, tracing


class Spans:
    """Follows each prediction it is given to its durable end, then makes its spans."""

    def __init__(self, tracer: Tracing) -> None:
        self._tracer = tracer
        self._following: set[asyncio.Task[None]] = set()

    @classmethod
    def for_settings(cls, settings: Settings) -> Spans | None:
        """None unless tracing is on (and OpenTelemetry installed): nothing to follow."""
        tracer = tracing(settings)
        return None if tracer is None else cls(tracer)

    def follow(self, task: PredictionTask) -> None:
        """Make `task`'s spans once it has ended; called as it starts, in its request."""
        following = asyncio.create_task(self._spans(task), name=f"tracing {task.prediction.id}")
        self._following.add(following)
        following.add_done_callback(self._following.discard)

    async def _spans(self, task: PredictionTask) -> None:
        parent = self._tracer.current()
        await task.finished()
        p = task.prediction
        written = None
        if task.recorded and p.completed_at is not None:
            with contextlib.suppress(Exception):  # not written: no span of its write
                await task.durable()
                # Its terminal write was queued as it ended, and committed now.
                written = (int(p.completed_at.timestamp() * 1e9), time.time_ns())
        self._tracer.prediction(p, parent, written)

    def close(self) -> None:
        """The server stops: predictions not ended by now get no spans."""
        for following in self._following:
            following.cancel()
