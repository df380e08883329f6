"""Domain records → the native API's JSON (timestamps in UTC with Z, durations in ISO 8601)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from foretell.domain import DeliveryAttempt, OutboxEvent, Prediction, WebhookStatus
from foretell.service import ModelView, VersionView

# The predictions of one batch share their start and end (scheduler.Job): each is formatted
# once per batch, and the durations a batch shares (its setup, its execution) too.
_SHARED = 1024


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is UTC:  # cached only where equal values are written alike
        return _utc(value)
    return value.isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=_SHARED)
def _utc(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def duration(value: timedelta | None) -> str | None:
    """ISO 8601, as pydantic writes a timedelta (what a FastAPI service like seed 001's emits)."""
    return None if value is None else _duration(value)


@lru_cache(maxsize=_SHARED)
def _duration(value: timedelta) -> str:
    return _iso_duration(value)


def _iso_duration(value: timedelta) -> str:
    return f"PT{value.total_seconds():.6f}".rstrip("0").rstrip(".") + "S"


def prediction(p: Prediction) -> dict[str, Any]:
    path = f"/v1/predictions/{p.id}"
    error = p.error
    return {
        "id": p.id,
        "model": {"owner": p.owner, "name": p.name, "version_number": p.version_number},
        "created_at": timestamp(p.created_at),
        "status": p.status.value,
        "updated_at": timestamp(p.updated_at),
        "setup_time": duration(p.setup_time),
        "execution_time": duration(p.execution_time),
        # Derived, not stored: from acceptance to the start on a replica (one a prediction,
        # so not cached).
        "queue_time": _iso_duration(p.started_at - p.created_at) if p.started_at else None,
        "error": None
        if error is None
        else {"source": error.source.value, "message": error.message, "detail": error.detail},
        "input": p.input,
        "output": p.output,
        "started_at": timestamp(p.started_at),
        "completed_at": timestamp(p.completed_at),
        "deadline_at": timestamp(p.deadline_at),
        "queue": None
        if p.queue is None
        else {"position": p.queue.position, "depth": p.queue.depth, "eta_s": p.queue.eta_s},
        "logs": p.logs,
        "webhook": p.webhook,
        "webhook_status": webhook_status(p).value,
        "deployment_id": p.deployment_id,
        "data_removed": p.data_removed,
        "request_id": p.request_id,
        "urls": {"get": path, "cancel": f"{path}/cancel", "stream": f"{path}/stream"},
    }


def prediction_json(p: Prediction) -> str:
    """The record as a JSON document: what its webhook events carry."""
    return orjson.dumps(prediction(p), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def webhook_status(p: Prediction) -> WebhookStatus:
    if p.webhook_status is not None:
        return p.webhook_status
    # Not looked up (a record just created or changed): its events are yet to be delivered.
    return WebhookStatus.NONE if p.webhook is None else WebhookStatus.PENDING


def webhook_event(e: OutboxEvent) -> dict[str, Any]:
    return {
        "webhook_id": e.id,
        "event": e.event,
        "url": e.url,
        "status": e.status.value,
        "created_at": timestamp(e.created_at),
        "next_attempt_at": timestamp(e.next_attempt_at),
    }


def webhook_delivery(e: OutboxEvent, attempts: list[DeliveryAttempt]) -> dict[str, Any]:
    """An event with every attempt to deliver it."""
    return {
        **webhook_event(e),
        "attempts": [
            {
                "number": a.number,
                "at": timestamp(a.at),
                "status_code": a.status_code,
                "error": a.error,
                "latency_ms": round(a.latency_s * 1000, 3),
                "outcome": a.outcome.value,
            }
            for a in attempts
        ],
    }


def version(v: VersionView, *, schemas: bool = True) -> dict[str, Any]:
    """A version and its deployment, with the environments serving it now."""
    environments = list(v.environments)
    body: dict[str, Any] = {
        "version_number": v.number,
        "description": v.description,
        "runtime": v.runtime,
        "status": v.status.value,
        "deployment": {
            "id": v.deployment_id,
            "environment": environments[0] if environments else None,
            "environments": environments,
            "status": v.status.value,
            "error": v.error,
            "replicas": {
                "min": v.replicas_min,
                "max": v.replicas_max,
                "running": v.replicas_running,
            },
            "isolation": v.isolation,
            "batching": v.batching.model_dump() if v.batching else None,
            "created_at": timestamp(v.created_at),
            "updated_at": timestamp(v.updated_at),
            "ready_at": timestamp(v.ready_at),
            "stopped_at": timestamp(v.stopped_at),
            "logs": v.logs,
            "build_log": v.build_log,
        },
    }
    if schemas:
        signature = v.signature
        body["input_schema"] = signature.input_schema if signature else None
        body["output_schema"] = signature.output_schema if signature else None
    return body


def model(m: ModelView, *, schemas: bool) -> dict[str, Any]:
    return {
        "owner": m.owner,
        "name": m.name,
        "model_id": m.model_id,  # Baseten's model-{model_id} host names
        "description": m.description,
        "latest_version": m.latest_version,
        "url": f"/v1/models/{m.owner}/{m.name}",
        "versions": [version(v, schemas=schemas) for v in reversed(m.versions)],
    }
