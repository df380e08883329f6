"""A prediction's event stream (SSE's events), computed from its record: positions and deltas.

An event's id is the stream's position after it, `"{output}-{logs}-{status}"`, counted on the
record itself: output in characters (a TEXT stream), items (ITEMS) or 0/1 (a whole output, 1 once
sent); logs in characters; status as the rank sent (STATUS_RANKS). So a stream fed live and one
replayed from the store give the same ids, and `Last-Event-ID` resumes exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from foretell.domain import OutputStream, Prediction, PredictionStatus
from foretell.errors import InvalidStreamPosition

# The status rank a stream has sent: 0 none, 1 pending, 2 processing, 3 error, 4 done.
PENDING, PROCESSING, ERROR, DONE = 1, 2, 3, 4
_RANKS = {PredictionStatus.PENDING: PENDING, PredictionStatus.PROCESSING: PROCESSING}
# Three non-negative integers; a Last-Event-ID longer than this is no id the stream gave.
_POSITION = re.compile(r"([0-9]{1,18})-([0-9]{1,18})-([0-9])")
_MAX_TEXT = 64
# Output characters one look hands a reader at most (at least one item): a reader far behind the
# record (one resuming, one replaying a long ended prediction) takes it in pieces, so what each
# reader holds at once is bounded by this, not by the record's size times the readers.
BATCH_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a reader of a prediction's stream is: what of its output, logs and status it has."""

    output: int = 0
    logs: int = 0
    status: int = 0

    @classmethod
    def parse(cls, text: str) -> StreamPosition:
        """The position an event's id names (a Last-Event-ID); InvalidStreamPosition if none."""
        match = _POSITION.fullmatch(text) if len(text) <= _MAX_TEXT else None
        if match is None:
            raise InvalidStreamPosition(
                text, "is not a stream position: three non-negative integers joined by '-'"
            )
        output, logs, status = (int(group) for group in match.groups())
        if status > DONE:
            raise InvalidStreamPosition(text, f"has status rank {status}, past done ({DONE})")
        return cls(output, logs, status)

    def __str__(self) -> str:
        return f"{self.output}-{self.logs}-{self.status}"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event: its name, its data already encoded, its id (None only for a cut)."""

    event: str  # "status" | "logs" | "output" | "error" | "done"
    data: str
    id: str | None


def cut(reason: str) -> StreamEvent:
    """The event that ends a stream cut short (a reader too slow, a server stopping): no id, so
    the reader's Last-Event-ID stays at the last real event, and it may resume from there."""
    return StreamEvent("error", _json({"reason": reason, "resume": True}), None)


def events_since(
    p: Prediction, since: StreamPosition, batch_chars: int = BATCH_CHARS
) -> tuple[list[StreamEvent], StreamPosition]:
    """The events of `p`'s record past `since`, in order (a status moved on, new logs, new
    output, then an error and done for an ended one), and the position after them. At most
    about `batch_chars` of output (at least one item) a call: with more left, the end's events
    wait for a later call, so a reader calls again until it gets none. Raises
    InvalidStreamPosition when `since` is past what the record holds."""
    text, items, whole = _output(p)
    output_end = len(text) if text is not None else len(items) if items is not None else 1
    terminal = p.status.terminal
    _check(p, since, output_end, terminal)
    events: list[StreamEvent] = []
    output, logs, status = since.output, since.logs, since.status
    rank = _RANKS.get(p.status)
    if rank is not None and rank > status:
        status = rank
        events.append(
            StreamEvent("status", _json({"status": p.status.value}), _id(output, logs, status))
        )
    if len(p.logs) > logs:
        new_logs, logs = p.logs[logs:], len(p.logs)
        events.append(StreamEvent("logs", new_logs, _id(output, logs, status)))
    more = False  # output left past this call's batch
    if text is not None:
        if len(text) > output:
            end = output + batch_chars
            if text[end - 1 : end + 1] == "\r\n":  # a CRLF stays whole (SSE makes it one LF)
                end += 1
            new_text, output = text[output:end], min(end, len(text))
            events.append(StreamEvent("output", new_text, _id(output, logs, status)))
        more = output < len(text)
    elif items is not None:
        taken = 0
        while output < len(items) and (taken == 0 or taken < batch_chars):
            data = _json(items[output])
            output += 1
            taken += len(data) or 1
            events.append(StreamEvent("output", data, _id(output, logs, status)))
        more = output < len(items)
    elif whole and output == 0 and p.status is PredictionStatus.SUCCEEDED:
        output = 1
        events.append(StreamEvent("output", _json(p.output), _id(output, logs, status)))
    if terminal and not more:  # else its end comes after the rest of its output
        if p.status is PredictionStatus.FAILED and status < ERROR:
            status = ERROR
            events.append(StreamEvent("error", _json(_failure(p)), _id(output, logs, status)))
        if status < DONE:
            status = DONE
            done = {"status": p.status.value}
            events.append(StreamEvent("done", _json(done), _id(output, logs, status)))
    return events, StreamPosition(output, logs, status)


def _output(p: Prediction) -> tuple[str | None, list[Any] | None, bool]:
    """The record's output as its stream counts it: streamed text, streamed items, or whole."""
    if p.streamed is OutputStream.TEXT and isinstance(p.output, str):
        return p.output, None, False
    if p.streamed is OutputStream.ITEMS and isinstance(p.output, list):
        return None, p.output, False
    if p.streamed is not None and p.output is None:
        return ("", None, False) if p.streamed is OutputStream.TEXT else (None, [], False)
    return None, None, True


def _check(p: Prediction, since: StreamPosition, output_end: int, terminal: bool) -> None:
    """`since` is a position this record's stream had (or will have); else refused."""
    problem = None
    if since.output > output_end:
        problem = f"is past this prediction's output (its position {output_end} at most now)"
    elif since.logs > len(p.logs):
        problem = f"is past this prediction's logs ({len(p.logs)} characters now)"
    elif since.status >= ERROR and not terminal:
        problem = f"says the stream ended, but this prediction is {p.status.value}"
    elif since.status == ERROR and p.status is not PredictionStatus.FAILED:
        problem = f"says an error was sent, but this prediction is {p.status.value}"
    elif since.output == 1 and _output(p)[2] and p.status is not PredictionStatus.SUCCEEDED:
        # A whole output is sent only once it succeeded.
        problem = f"says its output was sent, but this prediction is {p.status.value}"
    if problem is not None:
        raise InvalidStreamPosition(str(since), problem)


def _failure(p: Prediction) -> dict[str, Any]:
    error = p.error
    detail = None if error is None else {"source": error.source.value, "message": error.message}
    return {"status": p.status.value, "error": detail}


def _id(output: int, logs: int, status: int) -> str:
    return f"{output}-{logs}-{status}"


def _json(value: Any) -> str:
    # As the record is stored (store.tables.JSON_OPTIONS): a live output may hold numpy arrays.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
