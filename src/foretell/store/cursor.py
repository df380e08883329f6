"""Opaque list cursors: the (created_at, id) of the last row a page returned."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

import orjson

from foretell.errors import InvalidRequest, echo


class InvalidCursor(InvalidRequest):
    """A `cursor` parameter this server did not issue (or that was altered in transit)."""

    code = "invalid_cursor"

    def __init__(self, cursor: str, problem: str) -> None:
        super().__init__(f"invalid cursor '{echo(cursor)}': {problem}; pass next_cursor unchanged")
        self.cursor = cursor
        self.problem = problem


def encode(created_at: datetime, prediction_id: str) -> str:
    """The cursor that resumes listing after the row (created_at, prediction_id)."""
    raw = orjson.dumps([created_at.astimezone(UTC).isoformat(), prediction_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) inside `cursor`; raises InvalidCursor naming what is wrong."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCursor(cursor, "not url-safe base64") from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidCursor(cursor, "its content is not JSON") from None
    if not (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], str)
    ):
        raise InvalidCursor(cursor, "expected a [created_at, id] pair")
    try:
        created_at = datetime.fromisoformat(value[0])
    except ValueError:
        raise InvalidCursor(cursor, f"'{value[0]}' is not an ISO 8601 timestamp") from None
    if created_at.tzinfo is None:
        raise InvalidCursor(cursor, "its timestamp has no timezone")
    return created_at, value[1]
