"""Spice (seed 002): forecasts from a model's own dataset, alone or as an ensemble."""

from foretell.api.dialects.spice.routes import router

__all__ = ["router"]
