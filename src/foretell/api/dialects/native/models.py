"""Seed 001's model endpoints: list models, one model with its versions, one version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Admin, Reader
from foretell.api.body import documented, parse_body
from foretell.api.dialects.native import render
from foretell.api.openapi import errors
from foretell.api.responses import Json
from foretell.domain import ModelRef
from foretell.errors import EnvironmentNotFound
from foretell.service import VersionView

router = APIRouter(prefix="/v1/models", tags=["models"])


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version_number: int = Field(ge=1, description="the version this environment serves")


@router.get("")
async def list_models(request: Request, caller: Reader) -> Response:
    """The models the caller may see: its owner's, public ones, or all for an admin key."""
    models = state.service(request).catalog.models(caller)
    return Json({"results": [render.model(m, schemas=False) for m in models]})


@router.get("/{owner}/{name}", responses=errors(404))
async def get_model(owner: str, name: str, request: Request, caller: Reader) -> Response:
    model = state.service(request).catalog.model(owner, name, caller)
    return Json(render.model(model, schemas=True))


@router.get("/{owner}/{name}/versions/{version_number}", responses=errors(404))
async def get_version(
    owner: str, name: str, version_number: int, request: Request, caller: Reader
) -> Response:
    catalog = state.service(request).catalog
    return Json(render.version(catalog.version(ModelRef(owner, name, version_number), caller)))


@router.get("/{owner}/{name}/environments", responses=errors(404))
async def list_environments(owner: str, name: str, request: Request, caller: Reader) -> Response:
    """Each environment of the model and the version it serves."""
    catalog = state.service(request).catalog
    entries = []
    for environment in catalog.environments(owner, name, caller):
        try:
            entries.append(
                _environment(environment, catalog.environment(owner, name, environment, caller))
            )
        except EnvironmentNotFound as broken:  # its version left the repository: say so
            entries.append({"environment": environment, "error": broken.message})
    return Json({"results": entries})


@router.put(
    "/{owner}/{name}/environments/{environment}",
    openapi_extra=documented(Assignment),
    responses=errors(404),
)
async def assign_environment(
    owner: str, name: str, environment: str, request: Request, caller: Admin
) -> Response:
    """Point an environment (production, staging, …) at a version; made if it is new."""
    depth = state.settings(request).max_json_depth
    body = parse_body(await request.body(), Assignment, max_depth=depth)
    catalog = state.service(request).catalog
    version = await catalog.assign(owner, name, environment, body.version_number, caller)
    return Json(_environment(environment, version))


def _environment(environment: str, version: VersionView) -> dict[str, Any]:
    return {
        "environment": environment,
        "version_number": version.number,
        "deployment_id": version.deployment_id,
        "status": version.status.value,
    }
