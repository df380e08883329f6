"""Domain records → the native API's JSON (timestamps in UTC with Z, durations in ISO 8601)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from foretell.domain import DeploymentStatus, Prediction
from foretell.service import Deployment


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def duration(value: timedelta | None) -> str | None:
    """ISO 8601, as pydantic writes a timedelta (what a FastAPI service like seed 001's emits)."""
    if value is None:
        return None
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
        # Derived, not stored: from acceptance to the start on a replica.
        "queue_time": duration(p.started_at - p.created_at) if p.started_at else None,
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
        "deployment_id": p.deployment_id,
        "urls": {"get": path, "cancel": f"{path}/cancel"},
    }


def version(d: Deployment, *, schemas: bool = True) -> dict[str, Any]:
    manifest = d.version.manifest if d.version else None
    body: dict[str, Any] = {
        "version_number": d.number,
        "description": d.description,
        "runtime": manifest.runtime if manifest else None,
        "status": d.status.value,
        "deployment": {
            "id": d.id,
            "environment": d.environment,
            "status": d.status.value,
            "error": d.error,
            "replicas": manifest.replicas if manifest else 0,
            "isolation": manifest.isolation if manifest else None,
            "batching": manifest.batching.model_dump() if manifest else None,
            "created_at": timestamp(d.created_at),
            "updated_at": timestamp(d.updated_at),
            "logs": d.logs,
        },
    }
    if schemas:
        signature = d.signature
        body["input_schema"] = signature.input_schema if signature else None
        body["output_schema"] = signature.output_schema if signature else None
    return body


def model(
    owner: str, name: str, versions: dict[int, Deployment], *, schemas: bool
) -> dict[str, Any]:
    ready = [n for n, d in versions.items() if d.status is DeploymentStatus.READY]
    newest = versions[max(versions)]
    return {
        "owner": owner,
        "name": name,
        "description": newest.description,
        "latest_version": max(ready) if ready else None,
        "url": f"/v1/models/{owner}/{name}",
        "versions": [
            version(d, schemas=schemas) for _, d in sorted(versions.items(), reverse=True)
        ],
    }
