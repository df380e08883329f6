"""Pure records and enums shared by every layer: predictions, model references, deployments."""

from foretell.domain.deployment import DeploymentStatus
from foretell.domain.model import ModelRef
from foretell.domain.prediction import (
    ErrorSource,
    Prediction,
    PredictionError,
    PredictionStatus,
    QueueStatus,
)

__all__ = [
    "DeploymentStatus",
    "ErrorSource",
    "ModelRef",
    "Prediction",
    "PredictionError",
    "PredictionStatus",
    "QueueStatus",
]
