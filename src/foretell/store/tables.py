"""The database schema as SQLAlchemy Core tables; migrations/ must create exactly this."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator

from foretell.domain.nesting import RECORD_DEPTH, deeper_than, where

metadata = MetaData()
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; SQLite drops tzinfo, so UTC is re-attached on read.

    Normalising to UTC before writing also keeps SQLite's text timestamps sortable as strings.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; store aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JsonText(TypeDecorator[Any]):
    """A JSON document stored as TEXT.

    Not SQLAlchemy's JSON type: SQLite gives a column declared JSON numeric affinity, so a bare
    number output such as 2.0 came back as the integer 2 — and then failed to parse as JSON.
    Python None is SQL NULL, never the text 'null'."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else orjson.dumps(value, option=JSON_OPTIONS).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else read_json(value)


class PlainText(TypeDecorator[str]):
    """Free text (a model's logs, an error message) as TEXT, its NUL characters replaced by
    U+FFFD: PostgreSQL's TEXT refuses NUL, and one byte a model printed must not cost its record.
    Replaced on every backend, so a record reads back the same from each."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else value.replace("\x00", "\ufffd")


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored JSON document the store will not serve back, and why (see rows.from_row)."""

    reason: str


def read_json(text: str) -> Any:
    """The document, or Unreadable where it is not JSON or nests deeper than any answer could
    carry: one such row must not fail every read that includes it."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return Unreadable(f"it is not JSON that can be read back ({exc})")
    # Each level takes two characters at least, so a short document needs no walk.
    if len(text) > 2 * RECORD_DEPTH and (path := deeper_than(value, RECORD_DEPTH)) is not None:
        return Unreadable(f"it nests deeper than {RECORD_DEPTH} levels (at {where(path)})")
    return value


# The statuses of work still to do, as an index's condition (both databases take partial indexes).
UNFINISHED_SQL = "status IN ('pending', 'processing')"
UNSETTLED_SQL = "status IN ('pending', 'failing')"  # webhook events still to deliver

predictions = Table(
    "predictions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("version_number", Integer, nullable=False),
    Column("deployment_id", String(128), nullable=True),
    Column("status", String(16), nullable=False),
    Column("input", JsonText, nullable=False),
    Column("output", JsonText, nullable=True),
    Column("error", JsonText, nullable=True),
    Column("webhook", JsonText, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("deadline_at", UTCDateTime, nullable=True),
    Column("setup_time", Float, nullable=True),
    Column("execution_time", Float, nullable=True),
    Column("logs", PlainText, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_by", String(64), nullable=True),  # the owner of the key that created it
    # The X-Request-Id of the request that created it (at most 128 printable ASCII characters).
    Column("request_id", String(128), nullable=True),
    # True once retention removed its output files (store.predictions.mark_data_removed);
    # never in a record's own writes, so they cannot set it back.
    Column("data_removed", Boolean, nullable=False, server_default=false()),
    # How a streaming model's output grew (domain.OutputStream's value); NULL: set whole at its
    # end. A stream resumed from the record counts its output's position by it.
    Column("streamed", String(16), nullable=True),
    # Which API process runs it, until when (the database's clock): see store.leases. Both
    # NULL once it ended, or when a stop handed it back.
    Column("claimed_by", String(32), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Index("ix_predictions_created_at_id", "created_at", "id"),
    Index("ix_predictions_created_by_created_at", "created_by", "created_at"),
    Index("ix_predictions_owner_name_created_at", "owner", "name", "created_at"),
    Index("ix_predictions_status", "status"),
    Index(
        "ix_predictions_unfinished_lease",
        "lease_until",
        sqlite_where=text(UNFINISHED_SQL),  # and on PostgreSQL: see with_postgresql
    ),
)

# Notices between API processes on a database without LISTEN/NOTIFY (SQLite, one machine):
# written in the transaction they announce, read by every process polling past its last `seq`
# (store.notify). PostgreSQL has the table too, empty: one schema for both.
notices = Table(
    "notices",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(32), nullable=False),
    Column("payload", String(128), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # Never reuse a seq, even after the newest rows are pruned: a reader past it would skip.
    sqlite_autoincrement=True,
)

# The webhook outbox: one row per event, inserted in the transaction of the status change that
# caused it, updated by the delivery worker as attempts are made.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("prediction_id", String(128), nullable=False),
    Column("event", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    # The X-Request-Id of the request that created its prediction, sent with each delivery.
    Column("request_id", String(128), nullable=True),
    # Which API process delivers it, until when (as predictions' leases); NULL once settled.
    Column("claimed_by", String(32), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Index("ix_webhook_events_prediction_id", "prediction_id"),
    Index("ix_webhook_events_status", "status"),
    Index(
        "ix_webhook_events_unsettled_lease",
        "lease_until",
        sqlite_where=text(UNSETTLED_SQL),  # and on PostgreSQL: see with_postgresql
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("prediction_id", String(128), nullable=False),
    Column("event", String(16), nullable=False),
    Column("number", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", PlainText, nullable=True),
    Column("outcome", String(16), nullable=False),
    Index("ix_webhook_attempts_prediction_id", "prediction_id"),
)

# API keys: never the key, only its public prefix and a SHA-256 digest of the whole key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("owner", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("rate_per_s", Float, nullable=True),
    Column("burst", Integer, nullable=True),
)

# Which version of a model each named environment (production, staging, …) serves, where an
# operator assigned one; unassigned, production is the latest ready version.
environments = Table(
    "environments",
    metadata,
    Column("id", String(200), primary_key=True),  # owner/name@environment
    Column("owner", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("environment", String(32), nullable=False),
    Column("version_number", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Stored files (foretell.files): uploads and models' outputs. The bytes live in a blob store
# under the id; `deleted_at` is set when retention or the owner removed them (the record stays,
# so a later GET can say when and why).
files = Table(
    "files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("name", PlainText, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("prediction_id", String(128), nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    Index("ix_files_owner_created_at", "owner", "created_at"),
    Index("ix_files_expires_at", "expires_at"),
)

# The partial indexes' WHERE on PostgreSQL, attached by `with_postgresql` rather than declared
# above: a `postgresql_where` makes SQLAlchemy import its whole PostgreSQL dialect to check the
# keyword, ~25 ms of every server start on SQLite (bench/cold_start.py).
_POSTGRESQL_WHERE = (
    (predictions, "ix_predictions_unfinished_lease", UNFINISHED_SQL),
    (webhook_events, "ix_webhook_events_unsettled_lease", UNSETTLED_SQL),
)
_postgresql_lock = threading.Lock()


def with_postgresql() -> MetaData:
    """`metadata` with its PostgreSQL options attached (the partial indexes' WHERE), as a
    PostgreSQL database and the migrations must see it; at most once a process."""
    with _postgresql_lock:
        for table, name, where in _POSTGRESQL_WHERE:
            (index,) = (index for index in table.indexes if index.name == name)
            options = index.dialect_options["postgresql"]  # (loads the dialect)
            if options["where"] is None:
                options["where"] = text(where)
    return metadata
