"""Seed 001's model endpoints: list models, one model with its versions, one version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Reader
from foretell.api.dialects.native import render
from foretell.api.responses import Json
from foretell.domain import ModelRef

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("")
async def list_models(request: Request, caller: Reader) -> Response:
    """The models the caller may see: its owner's, public ones, or all for an admin key."""
    models = state.service(request).deployments.models(caller)
    return Json({"results": [render.model(o, n, v, schemas=False) for (o, n), v in models.items()]})


@router.get("/{owner}/{name}")
async def get_model(owner: str, name: str, request: Request, caller: Reader) -> Response:
    versions = state.service(request).deployments.versions(owner, name, caller)
    return Json(render.model(owner, name, versions, schemas=True))


@router.get("/{owner}/{name}/versions/{version_number}")
async def get_version(
    owner: str, name: str, version_number: int, request: Request, caller: Reader
) -> Response:
    ref = ModelRef(owner, name, version_number)
    return Json(render.version(state.service(request).deployments.resolve(ref, caller)))
