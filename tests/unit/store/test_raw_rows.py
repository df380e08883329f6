"""Prediction rows written through the driver (store.raw) are stored exactly as SQLAlchemy stores
them: the same values from each column's converter as from SQLAlchemy's bind processor, and the
same stored text and values in the database, read back equal through the ORM's read path."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Dialect, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from foretell.domain import (
    ErrorSource,
    OutputStream,
    Prediction,
    PredictionError,
    PredictionStatus,
)
from foretell.store import PredictionStore, raw
from foretell.store.engine import create_engine
from foretell.store.rows import from_row, to_row
from foretell.store.tables import predictions

MakePrediction = Callable[..., Prediction]
DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": psycopg.dialect()}  # type: ignore[no-untyped-call]
NAIVE = datetime(2025, 1, 1, 12, 0, 0)

aware_times = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11))]
    ),
)
documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
values_by_kind: dict[str, st.SearchStrategy[Any]] = {
    "UTCDateTime": st.none() | aware_times,
    "JsonText": st.none() | documents.map(lambda d: orjson.Fragment(orjson.dumps(d))),
    "PlainText": st.none() | st.text(alphabet=st.characters(codec="utf-8")),
    "Float": st.none() | st.floats() | st.integers(-(10**6), 10**6),
    "String": st.none() | st.text(),
    "Integer": st.none() | st.integers(-(2**63), 2**63 - 1),
    "Boolean": st.none() | st.booleans(),
}


def _sqlalchemy_bound(column: Any, dialect: Dialect, value: Any) -> Any:
    process = column.type._cached_bind_processor(dialect)
    return value if process is None else process(value)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of one type (1 == 1.0 == True in Python; not to a database)."""
    if isinstance(a, float) and isinstance(b, float) and a != a:
        return b != b  # NaN
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("column", [c.name for c in predictions.columns])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_each_column_is_converted_as_sqlalchemy_binds_it(
    dialect: str, column: str, data: st.DataObject
) -> None:
    c = predictions.c[column]
    value = data.draw(values_by_kind[type(c.type).__name__])
    columns = raw.Columns(predictions, DIALECTS[dialect])
    ours = columns.values([column], {column: value})[0]
    theirs = _sqlalchemy_bound(c, DIALECTS[dialect], value)
    assert _same(ours, theirs), (value, ours, theirs)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_naive_timestamp_is_refused_as_utc_datetime_refuses_it(dialect: str) -> None:
    columns = raw.Columns(predictions, DIALECTS[dialect])
    with pytest.raises(ValueError, match="naive datetime 2025-01-01T12:00:00 given"):
        columns.values(["created_at"], {"created_at": NAIVE})


def test_the_sqlite_text_of_an_instant_is_the_same_whatever_its_zone() -> None:
    utc = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    east = utc.astimezone(timezone(timedelta(hours=9)))
    assert raw.sqlite_time(east) == "2025-03-04 05:06:07.000000"  # the cache keys by instant
    assert raw.sqlite_time(utc) == "2025-03-04 05:06:07.000000"


def _edgy(make_prediction: MakePrediction, id: str, **fields: Any) -> Prediction:
    """A record with every kind of awkward value a row holds."""
    india = timezone(timedelta(hours=5, minutes=30))
    values: dict[str, Any] = {
        "owner": "ünï",
        "name": "名前",
        "version_number": 2**31 - 1,
        "deployment_id": None,
        "status": PredictionStatus.PROCESSING,
        "input": {"text": "héllo \u0000 🎉", "big": 1.7976931348623157e308, "neg0": -0.0},
        "output": 2.0,  # a bare float: TEXT, never a number column that makes it 2
        "error": None,
        "webhook": {"url": "https://example.com/h?q=ü", "events": ["completed"]},
        "created_at": datetime(2025, 6, 1, 14, 0, 0, 0, tzinfo=india),
        "updated_at": datetime(2025, 6, 1, 12, 0, 3, 999999, tzinfo=UTC),
        "started_at": datetime(1, 1, 2, 0, 0, 0, 1, tzinfo=UTC),
        "completed_at": None,
        "deadline_at": datetime(9999, 12, 30, 23, 59, 59, tzinfo=india),
        "setup_time": timedelta(days=99_999, seconds=1, microseconds=500_000),
        "execution_time": timedelta(0),
        "logs": "a\u0000b ✓\n" * 3,
        "attempts": 0,
        "created_by": None,
        "streamed": OutputStream.ITEMS,
        "request_id": "~ a caller's id: 128 printable ASCII at most",
    }
    return make_prediction(id, **(values | fields))


def _as_stored(p: Prediction) -> Prediction:
    """`p` as any write stores it: PlainText replaces NUL in its logs."""
    return dataclasses.replace(p, logs=p.logs.replace("\x00", "\ufffd"))


def _stored(url: str, ids: tuple[str, str]) -> list[dict[str, Any]]:
    """The two rows as the database holds them, no type of SQLAlchemy's between (and on SQLite,
    each value's storage class)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = [c.name for c in predictions.columns]
            if conn.dialect.name == "sqlite":
                columns = ", ".join(f"{n}, typeof({n})" for n in names)
            else:
                columns = ", ".join(f"{n}::text" for n in names)
            rows = conn.exec_driver_sql(
                f"SELECT {columns} FROM predictions WHERE id IN ('{ids[0]}', '{ids[1]}') "
                f"ORDER BY id = '{ids[1]}'"
            ).all()
            return [dict(zip(columns.split(", "), row, strict=True)) for row in rows]
    finally:
        engine.dispose()


def _through_sqlalchemy(url: str, row: dict[str, Any]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(predictions), [row])
    finally:
        engine.dispose()


def _read_through_orm(url: str, id: str) -> Prediction:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return from_row(
                conn.execute(select(predictions).where(predictions.c.id == id)).mappings().one()
            )
    finally:
        engine.dispose()


def _differing(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    skip = ("id", "claimed_by", "lease_until")  # the claim: a lease on the database's clock
    return {k: (a[k], b[k]) for k in a if not k.startswith(skip) and a[k] != b[k]}


def test_a_row_written_raw_is_stored_and_read_as_sqlalchemy_writes_it(
    db_url: str, make_prediction: MakePrediction
) -> None:
    first = _edgy(make_prediction, "raw")
    ended = _edgy(
        make_prediction,
        "raw",
        status=PredictionStatus.FAILED,
        error=PredictionError(ErrorSource.MODEL, "bøom \u0000", {"line": 3, "big": 1e300}),
        output=None,
        completed_at=datetime(2025, 6, 1, 12, 0, 4, tzinfo=timezone(timedelta(hours=-11))),
        attempts=3,
        logs="",
    )

    async def write() -> tuple[Prediction | None, Prediction | None]:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(first)
            inserted = await store.get("raw")
            await store.update(ended)
            return inserted, await store.get("raw")
        finally:
            await store.close()

    inserted, updated = asyncio.run(write())
    # The raw path's rows read back equal through the store's reads...
    assert inserted == _as_stored(first)
    assert updated == _as_stored(ended)
    # ...and are stored as SQLAlchemy's own insert stores the same record.
    _through_sqlalchemy(db_url, {**to_row(ended), "id": "sqlalchemy"})
    ours, theirs = _stored(db_url, ("raw", "sqlalchemy"))
    assert _differing(ours, theirs) == {}
    assert _read_through_orm(db_url, "raw") == _as_stored(ended)


def test_an_inserted_row_matches_sqlalchemy_before_any_update(
    db_url: str, make_prediction: MakePrediction
) -> None:
    record = _edgy(make_prediction, "raw", status=PredictionStatus.SUCCEEDED)

    async def write() -> None:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(record)  # terminal: inserted without a claim
        finally:
            await store.close()

    asyncio.run(write())
    _through_sqlalchemy(db_url, {**to_row(record), "id": "sqlalchemy"})
    ours, theirs = _stored(db_url, ("raw", "sqlalchemy"))
    assert _differing(ours, theirs) == {}
    assert _read_through_orm(db_url, "raw") == _as_stored(record)


def test_an_update_rewrites_only_what_a_record_can_change(
    db_url: str, make_prediction: MakePrediction
) -> None:
    record = make_prediction("p", input={"n": 1}, created_by="alice")
    changed = dataclasses.replace(
        record,
        input={"n": 2},  # never changes once stored: an update does not carry it
        created_by="mallory",
        status=PredictionStatus.SUCCEEDED,
        output=[0.5],
        updated_at=record.updated_at + timedelta(seconds=1),
    )

    async def write() -> Prediction | None:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(record)
            await store.update(changed)
            return await store.get("p")
        finally:
            await store.close()

    stored = asyncio.run(write())
    assert stored == dataclasses.replace(changed, input={"n": 1}, created_by="alice")
