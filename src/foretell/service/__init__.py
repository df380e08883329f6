"""The one prediction path, and the deployments it runs on."""

from foretell.service.deployments import Deployment, Deployments
from foretell.service.predictions import NewPrediction, PredictionService

__all__ = ["Deployment", "Deployments", "NewPrediction", "PredictionService"]
