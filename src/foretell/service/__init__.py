"""The one prediction path, and the deployments it runs on."""

from foretell.service.deployments import Deployment, Deployments, model_id_of
from foretell.service.environments import Environments
from foretell.service.predictions import NewPrediction, PredictionService

__all__ = [
    "Deployment",
    "Deployments",
    "Environments",
    "NewPrediction",
    "PredictionService",
    "model_id_of",
]
