"""The native API (seed 001): predictions and models under /v1."""

from foretell.api.dialects.native.models import router as models_router
from foretell.api.dialects.native.predictions import router as predictions_router

__all__ = ["models_router", "predictions_router"]
