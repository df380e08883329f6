"""GPUX (seed 003): flat JSON of named inputs in, flat JSON of named outputs out."""

from foretell.api.dialects.gpux.routes import router

__all__ = ["router"]
