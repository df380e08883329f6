"""Durable records in SQLAlchemy (async) with Alembic migrations; SQLite by default."""

from foretell.store.cursor import InvalidCursor
from foretell.store.predictions import Page, PredictionStore

__all__ = ["InvalidCursor", "Page", "PredictionStore"]
