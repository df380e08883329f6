"""Seed 001's model endpoints: list models, one model with its versions, one version; and
foretell's management of them: a version's deployment (start, stop, replicas), a rescan."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Admin, Deployer, Reader
from foretell.api.body import documented, parse_body
from foretell.api.dialects.native import render
from foretell.api.dialects.native.schemas import ModelBody, ModelPage, RescanBody, VersionBody
from foretell.api.openapi import errors
from foretell.api.responses import Json
from foretell.domain import ModelRef
from foretell.errors import EnvironmentNotFound
from foretell.manifest import ReplicaRange
from foretell.manifest.manifest import MAX_REPLICAS
from foretell.service import VersionView

router = APIRouter(prefix="/v1/models", tags=["models"])
repository_router = APIRouter(prefix="/v1/repository", tags=["models"])


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version_number: int = Field(ge=1, description="the version this environment serves")


class ReplicaBounds(ReplicaRange):
    # Strict, as a key's settings are: `"max": "4"` or `"min": true` is refused, not read.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _count(value: Any) -> Any:
    """`replicas: N` is exactly N, as in a manifest."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_REPLICAS:
            raise PydanticCustomError(
                "replicas",
                "{value} replicas: a count must be 1 to {limit}; to stop the version, send "
                '"state": "stopped"; for none while idle, give a range, e.g. {"min": 0, '
                '"max": 1}',
                {"value": value, "limit": MAX_REPLICAS},
            )
        return {"min": value, "max": value}
    if value is not None and not isinstance(value, dict):
        raise PydanticCustomError(
            "replicas",
            "replicas must be a count (1 to {limit}) or an object {min, max, idle_s, "
            "target_wait_s}, not {kind}",
            {"limit": MAX_REPLICAS, "kind": type(value).__name__},
        )
    return value


_REPLICAS_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_REPLICAS},
        ReplicaBounds.model_json_schema(),
    ],
    "description": "N (exactly N), or {min, max, idle_s, target_wait_s}: between min (0: none "
    "while idle) and max, following the queue; fields left out take their defaults",
}


class DeploymentChange(BaseModel):
    """Start or stop a version, set its replicas, or both."""

    model_config = ConfigDict(extra="forbid", strict=True)

    state: Literal["started", "stopped"] | None = Field(
        None,
        description="started: load it (a failed one is retried); stopped: drain its work in "
        "flight and stop its replicas",
    )
    replicas: Annotated[
        ReplicaBounds | None, BeforeValidator(_count), WithJsonSchema(_REPLICAS_SCHEMA)
    ] = None

    @field_validator("replicas")
    @classmethod
    def _started(cls, value: ReplicaBounds | None, info: ValidationInfo) -> ReplicaBounds | None:
        if value is not None and info.data.get("state") == "stopped":
            raise PydanticCustomError(
                "replicas_stopped",
                'replicas apply to a started version: send them with "state": "started", or alone',
            )
        return value

    @model_validator(mode="after")
    def _something(self) -> DeploymentChange:
        if self.state is None and self.replicas is None:
            raise PydanticCustomError(
                "deployment_change", "give state, replicas or both: this body changes nothing"
            )
        return self


@router.get("", responses={200: {"model": ModelPage}})
async def list_models(request: Request, caller: Reader) -> Response:
    """The models the caller may see: its owner's, public ones, or all for an admin key."""
    models = state.service(request).catalog.models(caller)
    return Json({"results": [render.model(m, schemas=False) for m in models]})


@router.get("/{owner}/{name}", responses={200: {"model": ModelBody}, **errors(404)})
async def get_model(owner: str, name: str, request: Request, caller: Reader) -> Response:
    model = state.service(request).catalog.model(owner, name, caller)
    return Json(render.model(model, schemas=True))


@router.get(
    "/{owner}/{name}/versions/{version_number}",
    responses={200: {"model": VersionBody}, **errors(404)},
)
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


@router.post(
    "/{owner}/{name}/versions/{version_number}/deployment",
    openapi_extra=documented(DeploymentChange),
    responses={200: {"model": VersionBody}, **errors(404, 503)},
)
async def change_deployment(
    owner: str, name: str, version_number: int, request: Request, caller: Deployer
) -> Response:
    """Start or stop a version, or set its replicas (a stopped version so given starts); the
    version's record once it has settled. Needs the deploy scope and the model's owner."""
    depth = state.settings(request).max_json_depth
    body = parse_body(await request.body(), DeploymentChange, max_depth=depth)
    lifecycle = state.service(request).lifecycle
    ref = ModelRef(owner, name, version_number)
    if body.state == "stopped":
        changed = await lifecycle.unload(ref, caller)
    else:
        changed = await lifecycle.load(ref, caller, body.replicas)
    return Json(render.version(changed))


@repository_router.post("/rescan", responses={200: {"model": RescanBody}})
async def rescan(request: Request, caller: Deployer) -> Response:
    """Read the repository again now, as its watcher and SIGHUP do: versions added on disk
    start, versions gone drain and stop. Lists those of the models the caller owns."""
    found = await state.service(request).lifecycle.rescan()
    return Json(
        {
            "added": [str(r) for r in found.added if caller.owns(r.owner)],
            "removed": [str(r) for r in found.removed if caller.owns(r.owner)],
        }
    )


def _environment(environment: str, version: VersionView) -> dict[str, Any]:
    return {
        "environment": environment,
        "version_number": version.number,
        "deployment_id": version.deployment_id,
        "status": version.status.value,
    }
