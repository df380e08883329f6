"""Liveness and readiness: live while the process answers, ready once the models found at
startup have loaded. A version pushed, found or loaded again later does not take a serving process
out of service while it builds and loads (a load balancer would pull it, and every model with it):
its own status says it is loading, and its predictions answer "not ready".

Both are open, as probes are. Readiness tells anyone how many deployments are in each status;
a request with a key also learns the status of each deployment that key may see, and of no
other: a private model's name is no one else's to learn."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import identify
from foretell.api.openapi import errors
from foretell.api.responses import Json

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> Response:
    return Json({"status": "live"})


@router.get("/health/ready", responses=errors(503))
async def ready(request: Request) -> Response:
    """503 while a version found at startup is still loading, whoever asks; its details only
    to a key."""
    catalog = state.service(request).catalog
    everything = catalog.readiness()
    loading = everything.loading
    viewer = await identify(request.app.state.authenticator, request.headers)
    shown: dict[str, int] | dict[str, str]
    shown = everything.counts() if viewer is None else catalog.readiness(viewer).statuses()
    body = {"status": "deploying" if loading else "ready", "deployments": shown}
    return Json(body, status_code=503 if loading else 200)
