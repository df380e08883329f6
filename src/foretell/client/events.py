"""A prediction's stream as the client reads it, without I/O: its events, typed, and where a
dropped stream resumes (the last event id it had), shared by Client and AsyncClient."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from foretell.client.errors import ForetellClientError

EventName = Literal["status", "logs", "output", "error", "done"]
STREAM_RETRIES = 5  # reconnections in a row without an event in between, then it gives up


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of a prediction's stream: `event` names it, `data` is its text as sent (raw
    text for `logs` and a text stream's `output`; JSON otherwise), `id` its position."""

    event: EventName
    data: str
    id: str | None

    def json(self) -> Any:
        """`data` parsed as JSON (status, error, done, and the items of a list output)."""
        return json.loads(self.data)


class StreamCut(ForetellClientError):
    """A prediction's stream dropped more often in a row than the client reconnects."""

    code = "stream_cut"

    def __init__(self, prediction_id: str, tries: int, reason: str) -> None:
        super().__init__(
            f"the stream of prediction {prediction_id} dropped {tries} times in a row "
            f"({reason}); resume it with the last event id it gave"
        )
        self.prediction_id = prediction_id


@dataclass
class Resume:
    """Where a stream stands: its prediction, the last id it had, and reconnections in a row."""

    prediction_id: str | None
    last_id: str | None = None
    retries: int = STREAM_RETRIES
    failures: int = field(default=0)
    done: bool = False

    def take(self, event: str, data: str, event_id: str | None) -> StreamEvent | None:
        """The event to hand on, or None for a cut (the server let this reader go: it
        resumes from the last id it had, so nothing is lost or repeated)."""
        if event == "error" and _resumable(data):  # a cut has no id of its own
            return None
        self.failures = 0  # not on a cut: one that comes at once is no progress
        if event_id is not None:
            self.last_id = event_id
        if event == "done":
            self.done = True
        return StreamEvent(cast(EventName, event), data, event_id)

    def dropped(self, reason: str) -> None:
        """A connection ended before `done`: raises StreamCut past the retries."""
        self.failures += 1
        if self.failures > self.retries or self.prediction_id is None:
            raise StreamCut(self.prediction_id or "(not created)", self.failures, reason)

    def path(self) -> str:
        return f"/v1/predictions/{self.prediction_id}/stream"

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": self.last_id} if self.last_id is not None else {}

    def backoff_s(self) -> float:
        return min(0.1 * 2.0**self.failures, 5.0)


def _resumable(data: str) -> bool:
    try:
        body = json.loads(data)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("resume") is True
