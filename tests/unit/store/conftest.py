"""Fixtures for store tests: a prediction factory, and SQLite's file for SQLite-only checks.

Most store tests take `db_url` (tests/conftest.py): a fresh store on SQLite, then on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from foretell.domain import Prediction, PredictionStatus

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The SQLite file `db_url` names on its sqlite run (and `sqlite_url` always)."""
    return tmp_path / "data" / "foretell.db"


@pytest.fixture
def sqlite_url(db_path: Path) -> str:
    """For what only SQLite has (WAL, its file): a fresh SQLite store, no PostgreSQL run."""
    return f"sqlite:///{db_path}"


@pytest.fixture
def make_prediction() -> Callable[..., Prediction]:
    """Builds a pending prediction; `offset_s` spaces created_at, other kwargs override fields."""

    def make(id: str, *, offset_s: float = 0.0, **fields: Any) -> Prediction:
        created = T0 + timedelta(seconds=offset_s)
        values: dict[str, Any] = {
            "owner": "acme",
            "name": "resnet",
            "version_number": 1,
            "status": PredictionStatus.PENDING,
            "input": {"image": "https://example.com/cat.png"},
            "created_at": created,
            "updated_at": created,
        }
        values.update(fields)
        return Prediction(id=id, **values)

    return make
