"""The prediction record: one request's lifecycle, the canonical shape of the native API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from foretell.domain.webhook import WebhookStatus


class PredictionStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ABORTED = "aborted"  # its deadline passed before it started

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        PredictionStatus.SUCCEEDED,
        PredictionStatus.FAILED,
        PredictionStatus.CANCELED,
        PredictionStatus.ABORTED,
    }
)


class OutputStream(StrEnum):
    """How a streaming model's output grows while it runs (None on a record: whole at the end).

    TEXT: each item is a string, the output their concatenation (an `Iterator[str]`, as
    Replicate's `concatenate`); ITEMS: the output is the list of the items so far."""

    TEXT = "text"
    ITEMS = "items"


class ErrorSource(StrEnum):
    USER = "user"
    MODEL = "model"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class PredictionError:
    source: ErrorSource
    message: str
    detail: Any = None


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """Where a pending prediction waits: live, never stored. `position` 0 runs next; `eta_s` is
    None until the model has run a batch to measure."""

    position: int
    depth: int
    eta_s: float | None


@dataclass(slots=True)
class Prediction:
    """A prediction as stored and served. Mutated only by the service's task for it."""

    id: str
    owner: str
    name: str
    version_number: int
    status: PredictionStatus
    input: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    output: Any = None
    error: PredictionError | None = None
    webhook: dict[str, Any] | None = None
    deployment_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    deadline_at: datetime | None = None
    setup_time: timedelta | None = None
    execution_time: timedelta | None = None
    logs: str = ""
    attempts: int = 0
    created_by: str | None = None  # the owner of the API key that created it
    # The X-Request-Id of the request that created it (api.request_id): its logs' and traces'.
    request_id: str | None = None
    # True once retention (or its owner) removed its output files: their URLs then answer 410.
    data_removed: bool = False
    # How its output grew while it ran (a streaming model's); None: set whole when it ended.
    # Stored: a stream resumed from the record counts its output's position by it.
    streamed: OutputStream | None = None
    queue: QueueStatus | None = None  # filled in while it waits in a queue; not stored
    webhook_status: WebhookStatus | None = None  # filled in when read; not stored here
    # Stored fields the store would not serve back (field -> why), shown as a note instead;
    # filled in when read, and never written over (see store.rows).
    unreadable: dict[str, str] = field(default_factory=dict)
