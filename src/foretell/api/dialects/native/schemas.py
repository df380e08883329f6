"""The native API's request and response bodies, exactly as seed 001 names their fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from foretell.domain import ModelRef

WebhookEvent = Literal["start", "output", "logs", "completed"]


def _completed_only() -> list[WebhookEvent]:
    return ["completed"]


class Webhook(BaseModel):
    """Where to post prediction updates (stored now; delivered by the webhooks layer)."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    events: list[WebhookEvent] = Field(default_factory=_completed_only, min_length=1)


class PredictionRequest(BaseModel):
    model: str = Field(
        description="owner/name or owner/name:version_number; without a version the latest "
        "ready version runs",
        examples=["demo/iris", "demo/iris:1"],
    )
    input: dict[str, Any] = Field(description="The input to pass to the model.")
    webhook: Webhook | None = None

    @field_validator("model")
    @classmethod
    def _model_ref(cls, value: str) -> str:
        ModelRef.parse(value)  # raises ValueError with the expected format
        return value


class ModelName(BaseModel):
    owner: str
    name: str
    version_number: int


class ErrorBody(BaseModel):
    source: Literal["user", "model", "internal"]
    message: str
    detail: Any = None


class QueueBody(BaseModel):
    """Live, while the prediction waits for a replica."""

    position: int = Field(description="0 runs in the next batch")
    depth: int = Field(description="predictions waiting for this model in all")
    eta_s: float | None = Field(
        description="estimated seconds until it has run; null until the model has run a batch"
    )


class PredictionBody(BaseModel):
    """The record as served; seed 001's fields first, foretell's additions after."""

    id: str
    model: ModelName
    created_at: datetime
    status: Literal["pending", "processing", "succeeded", "failed", "canceled", "aborted"]
    updated_at: datetime
    setup_time: str | None = Field(description="ISO 8601 duration, e.g. PT0.0123S")
    execution_time: str | None = Field(description="ISO 8601 duration")
    queue_time: str | None = Field(None, description="created → started, ISO 8601 duration")
    error: ErrorBody | None
    input: Any
    output: Any
    started_at: datetime | None = None
    completed_at: datetime | None = None
    deadline_at: datetime | None = None
    queue: QueueBody | None = Field(None, description="where it waits; null once it has started")
    logs: str = ""
    webhook: Webhook | None = None
    deployment_id: str | None = None
    urls: dict[str, str] = {}


class PredictionPage(BaseModel):
    results: list[PredictionBody]
    next: str | None
