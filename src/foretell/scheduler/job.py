"""One queued prediction as the scheduler sees it: an input and a future for its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from foretell.workers import Chunk, Outcome


def _no_op(setup_s: float) -> None:
    return None


@dataclass(slots=True, eq=False)
class Job:
    """`on_start` fires when the job is handed to a replica, with the seconds that replica spent
    loading the model if this is its first batch (else 0); `result` resolves with its Outcome.
    `started_at` and `ended_at` are its batch's, one datetime for every job of the batch: a
    record's timestamps are read (and formatted) once per batch, not once per prediction."""

    prediction_id: str
    input: dict[str, Any]
    on_start: Callable[[float], None] = _no_op
    # Given each Chunk of its input's output and prints while its batch runs (on the loop);
    # None: nobody watches, its outcome comes whole.
    on_chunk: Callable[[Chunk], None] | None = None
    result: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    canceled: bool = False
    started_at: datetime | None = None  # set when it is handed to a replica
    ended_at: datetime | None = None  # set when its batch ended, before `result` resolves
