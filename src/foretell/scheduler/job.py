"""One queued prediction as the scheduler sees it: an input and a future for its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from foretell.workers import Outcome


def _no_op(setup_s: float) -> None:
    return None


@dataclass(slots=True, eq=False)
class Job:
    """`on_start` fires when the job is handed to a replica, with the seconds that replica spent
    loading the model if this is its first batch (else 0); `result` resolves with its Outcome."""

    prediction_id: str
    input: dict[str, Any]
    on_start: Callable[[float], None] = _no_op
    result: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    canceled: bool = False
