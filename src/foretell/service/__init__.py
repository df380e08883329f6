"""The one prediction path, and the catalog of what it serves (views, never a deployment)."""

from foretell.service.catalog import Catalog
from foretell.service.lifecycle import Lifecycle, Rescanned
from foretell.service.predictions import NewPrediction, PredictionService
from foretell.service.views import ModelView, Readiness, StatisticsView, Tallied, VersionView

__all__ = [
    "Catalog",
    "Lifecycle",
    "ModelView",
    "NewPrediction",
    "PredictionService",
    "Readiness",
    "Rescanned",
    "StatisticsView",
    "Tallied",
    "VersionView",
]
