"""SlashML (seed 000): POST /model-deployment/v1/models/{model_id}/predict."""

from foretell.api.dialects.slashml.routes import router

__all__ = ["router"]
