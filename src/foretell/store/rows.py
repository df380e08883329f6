"""Converts between `Prediction` records and `predictions` row dicts, snapshotting mutable state."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson

from foretell.domain import (
    ErrorSource,
    OutputStream,
    Prediction,
    PredictionError,
    PredictionStatus,
)
from foretell.store.tables import JSON_OPTIONS, Unreadable

log = logging.getLogger(__name__)
_JSON_FIELDS = ("input", "output", "error", "webhook")


def _snapshot(value: Any) -> orjson.Fragment | None:
    # Encoding now, not at commit time, freezes the caller's still-mutable dicts and makes an
    # unserialisable value fail its own caller instead of the whole group commit.
    return None if value is None else orjson.Fragment(orjson.dumps(value, option=JSON_OPTIONS))


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _duration(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def to_row(p: Prediction, *, new: bool = True) -> dict[str, Any]:
    """The row for `p` as of now; later changes to `p` do not affect it. Not `new` (an update):
    without what a record holds from its creation on (its model, input, webhook, creation time
    and creator), which an update would only encode and rewrite again, index entries included
    (a third of SQLite's work for a digits record's update)."""
    error = None
    if p.error is not None:
        e = p.error
        error = {"source": str(e.source), "message": e.message, "detail": e.detail}
    row = {
        "id": p.id,
        "deployment_id": p.deployment_id,
        "status": str(p.status),
        "output": _snapshot(p.output),
        "error": _snapshot(error),
        "updated_at": p.updated_at,
        "started_at": p.started_at,
        "completed_at": p.completed_at,
        "deadline_at": p.deadline_at,
        "setup_time": _seconds(p.setup_time),
        "execution_time": _seconds(p.execution_time),
        "logs": p.logs,
        "attempts": p.attempts,
        # Set on a streaming model's first output, while it runs: written with each update.
        "streamed": None if p.streamed is None else p.streamed.value,
    }
    if new:
        row |= {
            "owner": p.owner,
            "name": p.name,
            "version_number": p.version_number,
            "input": _snapshot(p.input),
            "webhook": _snapshot(p.webhook),
            "created_at": p.created_at,
            "created_by": p.created_by,
            "request_id": p.request_id,
        }
    for name in p.unreadable:  # what could not be read stays as it is stored
        row.pop(name, None)
    return row


def from_row(row: Mapping[Any, Any]) -> Prediction:
    """The `Prediction` a stored row describes. A JSON field that cannot be served back (see
    tables.read_json) is replaced by a note saying why, and named in `unreadable`."""
    unreadable = {n: row[n].reason for n in _JSON_FIELDS if isinstance(row[n], Unreadable)}
    if unreadable:
        row = _with_notes(row, unreadable)
    error = row["error"]
    return Prediction(
        id=row["id"],
        owner=row["owner"],
        name=row["name"],
        version_number=row["version_number"],
        deployment_id=row["deployment_id"],
        status=PredictionStatus(row["status"]),
        input=row["input"],
        output=row["output"],
        error=None
        if error is None
        else PredictionError(ErrorSource(error["source"]), error["message"], error.get("detail")),
        webhook=row["webhook"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        deadline_at=row["deadline_at"],
        setup_time=_duration(row["setup_time"]),
        execution_time=_duration(row["execution_time"]),
        logs=row["logs"],
        attempts=row["attempts"],
        created_by=row["created_by"],
        request_id=row["request_id"],
        data_removed=bool(row["data_removed"]),
        streamed=_streamed(row["id"], row["streamed"]),
        unreadable=unreadable,
    )


_STREAMS = {mode.value: mode for mode in OutputStream}


def _streamed(prediction_id: str, value: str | None) -> OutputStream | None:
    """How the record's output grew. A value this version does not know (written by a newer
    one) reads as None, the output whole: its stream then replays the output as one event."""
    if value is None:
        return None
    mode = _STREAMS.get(value)
    if mode is None:
        log.warning(
            "prediction %s: its stored streamed %r is none of %s; its output is shown whole",
            prediction_id,
            value,
            ", ".join(_STREAMS),
        )
    return mode


def _with_notes(row: Mapping[Any, Any], unreadable: dict[str, str]) -> dict[str, Any]:
    problems = "; ".join(f"its stored {name}: {why}" for name, why in unreadable.items())
    log.warning("prediction %s is shown with notes in place of %s", row["id"], problems)
    notes: dict[str, Any] = {
        n: {"unreadable": f"the stored {n} cannot be shown: {why}"} for n, why in unreadable.items()
    }
    if "error" in notes:
        notes["error"] = {"source": "internal", "message": notes["error"]["unreadable"]}
    if "webhook" in notes:
        notes["webhook"] = None  # no address to send to
    return {**row, **notes}
