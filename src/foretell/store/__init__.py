"""Durable records in SQLAlchemy with Alembic migrations; SQLite by default, PostgreSQL by URL."""

from foretell.store.cursor import InvalidCursor
from foretell.store.predictions import Page, PredictionStore
from foretell.store.writer import ClaimLost

__all__ = ["ClaimLost", "InvalidCursor", "Page", "PredictionStore"]
