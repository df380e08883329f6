"""The hot writes through the database driver itself: prebuilt tuples, many rows a call.

SQLAlchemy's executemany of a prediction row cost the writer thread about 79 us (compiling,
a bind processor a column, DATETIME formatting), where the driver takes a tuple in a few. On
SQLite a batch is one executemany of tuples; on PostgreSQL one statement whose parameters are
one array a column (`insert_arrays`, `update_arrays`: unnest): psycopg's pipelined executemany
took 26-30 us of client CPU a row, arrays 17-19 (30-row batches, bench/README.md). The
rows written here must read back through SQLAlchemy exactly as its own writes do, so each
column's value is made as its type in tables.py would bind it (`Columns`), checked against
SQLAlchemy's own bind processors by tests/unit/store/test_raw_rows.py:
- UTCDateTime: on SQLite the text 'YYYY-MM-DD HH:MM:SS.ffffff' of the UTC time (SQLAlchemy's
  DATETIME storage format); on PostgreSQL the aware datetime, which psycopg sends as
  timestamptz. A naive one is refused, as UTCDateTime refuses it.
- JsonText: orjson's text of the value (a row holds orjson.Fragment snapshots, rows.py).
- PlainText: NUL replaced by U+FFFD. Float on SQLite: float(). Others as they are.

The statements run on the SQLAlchemy connection's own driver connection, inside its transaction;
a driver error is raised as SQLAlchemy would raise it (DBAPIError.instance: IntegrityError,
OperationalError...), the connection invalidated when the driver says it was lost, so
store.unavailable and the writer's reconnect see the same errors as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Boolean, Connection, Dialect, Float, Integer, Table
from sqlalchemy.exc import DBAPIError

from foretell.store.tables import JSON_OPTIONS, JsonText, PlainText, UTCDateTime

Convert = Callable[[Any], Any]
_ZERO = timedelta(0)
_TIMES: dict[datetime, str] = {}  # formatted SQLite timestamps, by the datetime
_TIMES_KEPT = 4096  # a few seconds of records' timestamps at full speed


def sqlite_time(value: datetime | None) -> str | None:
    """`value` as UTCDateTime stores it on SQLite: the UTC time in SQLAlchemy's DATETIME text.
    Formatted once: a record's timestamps are written again with each of its updates."""
    if value is None:
        return None
    text = _TIMES.get(value)  # equal only to an aware datetime of the same instant
    if text is None:
        offset = value.utcoffset()
        if offset is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; store aware datetimes")
        utc = value if offset == _ZERO else value.astimezone(UTC)
        # 'YYYY-MM-DD HH:MM:SS.ffffff+00:00': its first 26 characters are SQLAlchemy's format.
        text = utc.isoformat(" ", "microseconds")[:26]
        if len(_TIMES) >= _TIMES_KEPT:
            _TIMES.clear()
        _TIMES[value] = text
    return text


def _aware_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} given; store aware datetimes")
    return value.astimezone(UTC)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=JSON_OPTIONS).decode()


def _plain(value: str | None) -> str | None:
    return None if value is None else value.replace("\x00", "\ufffd")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _flag(value: Any) -> int | None:
    return None if value is None else int(bool(value))  # SQLite has no booleans: 1 or 0


def converter(column_type: Any, dialect: str) -> Convert | None:
    """How a value of `column_type` is handed to the driver of `dialect` (None: as it is)."""
    if isinstance(column_type, UTCDateTime):
        return sqlite_time if dialect == "sqlite" else _aware_time
    if isinstance(column_type, JsonText):
        return _json
    if isinstance(column_type, PlainText):
        return _plain
    if isinstance(column_type, Float) and dialect == "sqlite":
        return _float
    if isinstance(column_type, Boolean) and dialect == "sqlite":
        return _flag
    return None


def _array_type(column_type: Any) -> str:
    """The PostgreSQL array type a column's values are sent as (assigned to the column's type
    on insert, as a single value would be)."""
    if isinstance(column_type, UTCDateTime):
        return "timestamptz[]"
    if isinstance(column_type, Float):
        return "float8[]"
    if isinstance(column_type, Integer):
        return "int8[]"
    if isinstance(column_type, Boolean):
        return "bool[]"
    return "text[]"


class Tuples:
    """Makes the driver's tuple of a row's `names`, each value as its column's type stores it."""

    def __init__(self, names: Sequence[str], convert: dict[str, Convert | None]) -> None:
        self.names = tuple(names)
        # itemgetter takes them all in C; only the columns that need it are then converted.
        self._get = itemgetter(*self.names) if len(self.names) > 1 else _one(self.names[0])
        self._convert = [(i, f) for i, n in enumerate(self.names) if (f := convert[n])]

    def __call__(self, row: dict[str, Any]) -> tuple[Any, ...]:
        values = list(self._get(row))
        for index, convert in self._convert:
            values[index] = convert(values[index])
        return tuple(values)


def _one(name: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda row: (row[name],)


class Columns:
    """A table's columns as the driver of one dialect takes them: SQL text and value tuples."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table.name
        self.dialect = dialect
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._convert = {c.name: converter(c.type, dialect.name) for c in table.columns}
        self._array = {c.name: _array_type(c.type) for c in table.columns}

    def tuples(self, names: Sequence[str]) -> Tuples:
        """What makes the value tuples of rows with `names`."""
        return Tuples(names, self._convert)

    def values(self, names: Sequence[str], row: dict[str, Any]) -> tuple[Any, ...]:
        """The values of `names` in `row`, each as its column's type stores it."""
        return self.tuples(names)(row)

    def insert(self, names: Sequence[str], **sql: str) -> str:
        """INSERT of `names` from parameters, and of the columns in `sql` from SQL expressions."""
        columns = ", ".join([*names, *sql])
        values = ", ".join([*(self.mark for _ in names), *sql.values()])
        return f"INSERT INTO {self.table} ({columns}) VALUES ({values})"

    def update(self, names: Sequence[str], where: Sequence[str]) -> str:
        """UPDATE setting `names` where each of `where` equals its parameter (in that order)."""
        sets = ", ".join(f"{n} = {self.mark}" for n in names)
        conditions = " AND ".join(f"{n} = {self.mark}" for n in where)
        return f"UPDATE {self.table} SET {sets} WHERE {conditions}"

    # PostgreSQL: one statement for a whole batch, each column's values one array parameter
    # (unnest), sent in binary: psycopg's executemany spent more on each row than the row.

    def insert_arrays(self, names: Sequence[str], **sql: str) -> str:
        """INSERT of rows whose `names` come as one array each (`arrays`), and the columns in
        `sql` from SQL expressions."""
        columns = ", ".join([*names, *sql])
        extra = "".join(f", {expression}" for expression in sql.values())
        arrays = self._arrays(names)
        return f"INSERT INTO {self.table} ({columns}) SELECT *{extra} FROM unnest({arrays})"

    def update_arrays(self, names: Sequence[str], where: Sequence[str]) -> str:
        """UPDATE setting `names` of each row where each of `where` equals its value, the
        values one array a column (`arrays`: `names`, then `where`); it returns the first of
        `where` of each row it changed."""
        every = [*names, *where]
        aliases = ", ".join(f"c{i}" for i in range(len(every)))
        sets = ", ".join(f"{n} = v.c{i}" for i, n in enumerate(names))
        conditions = " AND ".join(
            f"{self.table}.{n} = v.c{len(names) + i}" for i, n in enumerate(where)
        )
        return (
            f"UPDATE {self.table} SET {sets} FROM unnest({self._arrays(every)}) AS v({aliases}) "
            f"WHERE {conditions} RETURNING {self.table}.{where[0]}"
        )

    def arrays(self, names: Sequence[str], rows: list[tuple[Any, ...]]) -> list[list[Any]]:
        """The value tuples `rows` (of `names`) as one list a column."""
        arrays = [list(values) for values in zip(*rows, strict=True)]
        for index, name in enumerate(names):
            if self._array[name] == "float8[]":  # one type a list: an int among floats is not
                arrays[index] = [_float(v) for v in arrays[index]]
        return arrays

    def _arrays(self, names: Sequence[str]) -> str:
        return ", ".join(f"%b::{self._array[n]}" for n in names)


def sql_text(conn: Connection, clause: Any) -> str:
    """`clause` compiled for `conn`'s database with its values inlined (a db_time expression)."""
    return str(clause.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


@contextmanager
def driver_cursor(conn: Connection, statement: str) -> Iterator[Any]:
    """A cursor of `conn`'s driver connection, in its transaction; a driver error raised in the
    block comes out as SQLAlchemy raises it, naming `statement`."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None, "the writer's connection is open"
    cursor = dbapi.cursor()
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as error:
        lost = conn.dialect.is_disconnect(error, dbapi, cursor)
        wrapped = DBAPIError.instance(
            statement,
            None,
            error,
            conn.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=conn.dialect,
        )
        if lost:
            conn.invalidate(wrapped)
        raise wrapped from error
    finally:
        # A lost connection's cursor may fail to close; the error above says what happened.
        with suppress(conn.dialect.loaded_dbapi.Error):
            cursor.close()


def execute_many(conn: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """Run `statement` once per tuple of `rows`, in one executemany of the driver."""
    with driver_cursor(conn, statement) as cursor:
        cursor.executemany(statement, rows)
