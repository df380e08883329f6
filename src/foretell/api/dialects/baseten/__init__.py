"""Baseten (seed 004): predict on a deployment or an environment of a model."""

from foretell.api.dialects.baseten.routes import router

__all__ = ["router"]
