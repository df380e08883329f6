"""Liveness and readiness: live while the process answers, ready once no model is still loading."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.api import state
from foretell.api.responses import Json
from foretell.domain import DeploymentStatus

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> Response:
    return Json({"status": "live"})


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    deployments = state.service(request).deployments.all()
    statuses = {str(d.ref): d.status.value for d in deployments}
    loading = [ref for ref, s in statuses.items() if s == DeploymentStatus.DEPLOYING]
    body = {"status": "deploying" if loading else "ready", "deployments": statuses}
    return Json(body, status_code=503 if loading else 200)
