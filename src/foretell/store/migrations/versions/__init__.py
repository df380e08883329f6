"""Alembic revisions, one schema change each, applied in order by `PredictionStore.open`."""
