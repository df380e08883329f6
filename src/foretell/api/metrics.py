"""GET /metrics in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import authorize
from foretell.domain.access import Scope
from foretell.metrics import REGISTRY

router = APIRouter(tags=["health"])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Open unless the server runs with FORETELL_METRICS_OPEN=false: then a read key."""
    if not state.settings(request).metrics_open:
        await authorize(request.app.state.authenticator, request.headers, Scope.READ, "/metrics")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
