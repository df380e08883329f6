"""The native API (seed 001): predictions and models under /v1."""

from foretell.api.dialects.native.files import router as files_router
from foretell.api.dialects.native.models import repository_router
from foretell.api.dialects.native.models import router as models_router
from foretell.api.dialects.native.predictions import router as predictions_router
from foretell.api.dialects.native.push import router as push_router
from foretell.api.dialects.native.render import prediction_json
from foretell.api.dialects.native.webhooks import router as webhooks_router

__all__ = [
    "files_router",
    "models_router",
    "prediction_json",
    "predictions_router",
    "push_router",
    "repository_router",
    "webhooks_router",
]
