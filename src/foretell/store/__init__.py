"""Durable records in SQLAlchemy with Alembic migrations; SQLite by default, PostgreSQL by URL."""

from foretell.store.cursor import InvalidCursor
from foretell.store.predictions import Page, PredictionStore

__all__ = ["InvalidCursor", "Page", "PredictionStore"]
