"""What the routers read from the running app: the prediction service and the settings."""

from __future__ import annotations

from fastapi import Request

from foretell.config import Settings
from foretell.service import PredictionService


def service(request: Request) -> PredictionService:
    found: PredictionService = request.app.state.service
    return found


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found
