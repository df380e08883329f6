"""Pure records and enums shared by every layer: predictions, models, deployments, webhooks."""

from foretell.domain.deployment import DeploymentStatus
from foretell.domain.model import ModelRef
from foretell.domain.prediction import (
    ErrorSource,
    OutputStream,
    Prediction,
    PredictionError,
    PredictionStatus,
    QueueStatus,
)
from foretell.domain.webhook import (
    DEFAULT_EVENTS,
    EVENTS,
    DeliveryAttempt,
    DeliveryStatus,
    OutboxEvent,
    WebhookEventName,
    WebhookStatus,
)

__all__ = [
    "DEFAULT_EVENTS",
    "EVENTS",
    "DeliveryAttempt",
    "DeliveryStatus",
    "DeploymentStatus",
    "ErrorSource",
    "ModelRef",
    "OutboxEvent",
    "OutputStream",
    "Prediction",
    "PredictionError",
    "PredictionStatus",
    "QueueStatus",
    "WebhookEventName",
    "WebhookStatus",
]
