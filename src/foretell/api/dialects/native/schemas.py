"""The native API's request and response bodies, exactly as seed 001 names their fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    UrlConstraints,
    field_validator,
    model_validator,
)

from foretell.api.body import validate
from foretell.domain import DEFAULT_EVENTS, ModelRef, WebhookEventName
from foretell.webhooks.targets import MAX_URL_CHARS, url_problem


def _default_events() -> list[WebhookEventName]:
    return list(DEFAULT_EVENTS)


class Webhook(BaseModel):
    """Where to post prediction updates, and which of them."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=MAX_URL_CHARS)]
    events: list[WebhookEventName] = Field(default_factory=_default_events, min_length=1)

    @field_validator("url")
    @classmethod
    def _deliverable(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        # What is stored and sent is the URL as pydantic wrote it (punycode, percent-escapes),
        # which can be longer than what was given, or one httpx would refuse at every delivery.
        problem = url_problem(str(value))
        if problem is not None:
            raise ValueError(problem)
        return value


class PredictionRequest(BaseModel):
    model: str = Field(
        description="owner/name or owner/name:version_number; without a version the latest "
        "ready version runs",
        examples=["demo/iris", "demo/iris:1"],
    )
    input: dict[str, Any] = Field(description="The input to pass to the model.")
    webhook: Webhook | None = Field(
        None,
        description="where to POST the record as it changes: {url, events}, or just the URL "
        "(then webhook_events_filter picks the events; default start and completed)",
    )
    webhook_events_filter: list[WebhookEventName] | None = Field(
        None, min_length=1, description="the events of a webhook given as a bare URL"
    )
    stream: bool = Field(
        False,
        description="true: the answer is the prediction's event stream (Server-Sent Events, as "
        "GET /v1/predictions/{id}/stream sends it; so does Accept: text/event-stream), status "
        "200 with the record's id in X-Prediction-Id and Location; it runs as an async "
        "prediction, recorded, and Prefer: wait is not applied",
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_url(cls, data: Any) -> Any:
        """A bare URL (Replicate's style) becomes {url, events}; the filter goes with it."""
        if not isinstance(data, dict):
            return data
        hook, events = data.get("webhook"), data.get("webhook_events_filter")
        if isinstance(hook, str):
            return {**data, "webhook": {"url": hook}}  # the filter applies in webhook_target
        if events is not None and hook is not None:
            raise ValueError(
                "give the events in webhook.events or in webhook_events_filter, not both"
            )
        if events is not None:
            raise ValueError("webhook_events_filter needs a webhook URL")
        return data

    @field_validator("model")
    @classmethod
    def _model_ref(cls, value: str) -> str:
        ModelRef.parse(value)  # raises ValueError with the expected format
        return value

    def webhook_target(self) -> dict[str, Any] | None:
        """The webhook as stored on the record: {"url", "events"}, each event once."""
        if self.webhook is None:
            return None
        events = self.webhook_events_filter or self.webhook.events
        return {"url": str(self.webhook.url), "events": list(dict.fromkeys(events))}


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a create request asks for, read out of its body."""

    model: ModelRef
    input: dict[str, Any]
    webhook: dict[str, Any] | None
    stream: bool = False  # answer with the event stream (api.sse)


def read_request(data: Any) -> Wanted:
    """A parsed create body as PredictionRequest reads it. The common one, {"model", "input"}
    with a model reference and an object, is taken as it is: what pydantic's validation would
    make of it, without the model (5.6 µs for digits' body, against about 1 µs). Anything else
    is validated, for its errors."""
    if type(data) is dict and len(data) == 2:
        model, given = data.get("model"), data.get("input")
        if type(model) is str and type(given) is dict:
            try:
                return Wanted(ModelRef.parse(model), given, None)
            except ValueError:
                pass  # validated below, for pydantic's own 422
    body = validate(data, PredictionRequest)
    return Wanted(ModelRef.parse(body.model), body.input, body.webhook_target(), body.stream)


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
    webhook_status: Literal["none", "pending", "delivered", "failing", "dead"] = Field(
        "none",
        description="its webhook events' delivery, the worst first: dead (given up), failing "
        "(being retried), pending (not sent yet), delivered; none without a webhook",
    )
    deployment_id: str | None = None
    data_removed: bool = Field(
        False,
        description="true once its output files were removed (their retention passed): "
        "their URLs then answer 410",
    )
    request_id: str | None = Field(
        None, description="the X-Request-Id of the request that created it (given or made)"
    )
    urls: dict[str, str] = {}


class AttemptBody(BaseModel):
    number: int = Field(description="1 for the first try of this event")
    at: datetime
    status_code: int | None = Field(description="the receiver's answer; null if none came")
    error: str | None = Field(description="why it did not count as delivered, when not a code")
    latency_ms: float
    outcome: Literal["delivered", "failing", "dead"]


class WebhookEventBody(BaseModel):
    webhook_id: str = Field(description="the webhook-id header, the same on every attempt")
    event: Literal["start", "output", "logs", "completed"]
    url: str
    status: Literal["pending", "failing", "delivered", "dead"]
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="when it is tried again, if it will be")


class WebhookDeliveryBody(WebhookEventBody):
    attempts: list[AttemptBody]


class WebhookLogBody(BaseModel):
    prediction_id: str
    webhook: Webhook | None
    webhook_status: Literal["none", "pending", "delivered", "failing", "dead"]
    events: list[WebhookDeliveryBody]


class PredictionPage(BaseModel):
    results: list[PredictionBody]
    next: str | None


class ReplicasBody(BaseModel):
    min: int = Field(description="replicas kept running; 0: none while idle")
    max: int = Field(description="replicas running at most")
    running: int = Field(description="started and serving now")


class DeploymentBody(BaseModel):
    """The running copy of a version: its status, replicas, timestamps and logs."""

    id: str
    environment: str | None = Field(description="the first environment serving it, if any")
    environments: list[str]
    status: Literal["building", "deploying", "ready", "failed", "stopped"]
    error: str | None = Field(description="why it failed, when it has")
    replicas: ReplicasBody
    isolation: str | None
    batching: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime = Field(description="its last change of status or replicas")
    ready_at: datetime | None = Field(None, description="when it last became ready")
    stopped_at: datetime | None = Field(None, description="when it was last stopped (unloaded)")
    build_log: str = Field("", description="its environment's last build (pip's output)")
    logs: str = Field(description="its last deploy: what setting up its replicas said")


class VersionBody(BaseModel):
    version_number: int
    description: str
    runtime: str | None = Field(description="null: its folder could not be read")
    status: Literal["building", "deploying", "ready", "failed", "stopped"]
    deployment: DeploymentBody
    input_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema of its input, once it has loaded (not in listings)"
    )
    output_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema of its output, once it has loaded (not in listings)"
    )


class ModelBody(BaseModel):
    owner: str
    name: str
    model_id: str = Field(description="DNS-safe, for Baseten's model-{model_id} host names")
    description: str
    latest_version: int | None = Field(description="the highest version that is ready")
    url: str
    versions: list[VersionBody] = Field(description="newest first")


class ModelPage(BaseModel):
    results: list[ModelBody]


class RescanBody(BaseModel):
    added: list[str] = Field(description="versions found on disk and started, owner/name:N")
    removed: list[str] = Field(description="versions gone from disk, drained and stopped")
