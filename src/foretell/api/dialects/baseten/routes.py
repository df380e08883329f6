"""Baseten's predict routes: any JSON in, the model's JSON out.

The model is the one of the request's host when it is `model-{model_id}.…` (so a client that
only swaps Baseten's host for foretell's works), or of a `/model/{model_id}` path prefix;
`model_id` is the model's DNS-safe id, `owner-name` (GET /v1/models lists it). Then
`/deployment/{deployment_id}/predict` runs that deployment, `/production/predict`,
`/development/predict` and `/environments/{env_name}/predict` the version that environment
serves. No record is kept: Baseten's callers get the answer and nothing to poll."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import PublicPredictor
from foretell.api.dialects import sync
from foretell.api.dialects.inputs import one_input
from foretell.api.errors import dialect
from foretell.api.openapi import errors
from foretell.api.responses import Json
from foretell.domain.access import Principal
from foretell.errors import (
    DeploymentNotFound,
    ForetellError,
    ModelNotFound,
    NotFound,
)
from foretell.service import ModelView, VersionView

TAG = "baseten"
router = APIRouter(tags=[TAG], responses=errors(404, 500, 503))
# The body is the model's input as its own JSON (seed 004): documented so that clients and
# fuzzers send one.
MODEL_INPUT: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "the model's inputs by name"}
            }
        },
    }
}


def _error(exc: ForetellError, status: int) -> tuple[int, dict[str, str]]:
    if isinstance(exc, sync.ModelFailed):
        return 500, {"error": f"the model failed: {exc.message}"}
    return 400 if status == 422 else status, {"error": exc.message}


dialect(TAG, _error)


def _model(request: Request, model_id: str | None, caller: Principal) -> tuple[str, str] | None:
    """The (owner, name) the request addresses by path prefix, or else by its host."""
    catalog = state.service(request).catalog
    if model_id is not None:
        return _named(catalog.by_model_id(model_id, caller))
    host = request.headers.get("host", "").lower().rsplit(":", 1)[0]
    label, dot, _ = host.partition(".")
    if not (dot and label.startswith("model-")):
        return None
    return _named(catalog.by_model_id(label.removeprefix("model-"), caller))


def _named(model: ModelView) -> tuple[str, str]:
    return model.owner, model.name


def _no_model() -> NotFound:
    return NotFound(
        "no model named: call it on the host model-{model_id}.<this host>, or under "
        "/model/{model_id}/…; GET /v1/models lists each model's model_id"
    )


async def _run(request: Request, version: VersionView, caller: Principal) -> Response:
    signature = sync.answering(version)
    body = await sync.json_body(request)
    _, output = await sync.predict(
        state.service(request),
        version,
        one_input(body, signature.input_schema, "body"),
        caller,
        wait_s=state.settings(request).max_wait_s,
        record=False,
    )
    return Json(output)


async def _deployment(
    request: Request, deployment_id: str, caller: Principal, model_id: str | None
) -> Response:
    version = state.service(request).catalog.by_id(deployment_id, caller)
    try:
        model = _model(request, model_id, caller)
    except ModelNotFound:
        if model_id is not None:
            raise
        model = None  # a host that only looks like model-…: the deployment id says it all
    if model is not None and (version.owner, version.name) != model:
        raise DeploymentNotFound(deployment_id)
    return await _run(request, version, caller)


async def _environment(
    request: Request, environment: str, caller: Principal, model_id: str | None
) -> Response:
    model = _model(request, model_id, caller)
    if model is None:
        raise _no_model()
    catalog = state.service(request).catalog
    return await _run(request, catalog.environment(*model, environment, caller), caller)


@router.post("/deployment/{deployment_id}/predict", openapi_extra=MODEL_INPUT)
async def deployment_predict(
    deployment_id: str, request: Request, caller: PublicPredictor
) -> Response:
    """Run one deployment (a version) of the model."""
    return await _deployment(request, deployment_id, caller, None)


@router.post("/production/predict", openapi_extra=MODEL_INPUT)
async def production_predict(request: Request, caller: PublicPredictor) -> Response:
    """Run the version in production (unassigned: the latest ready one)."""
    return await _environment(request, "production", caller, None)


@router.post("/development/predict", openapi_extra=MODEL_INPUT)
async def development_predict(request: Request, caller: PublicPredictor) -> Response:
    """Run the version in development (unassigned: the newest one)."""
    return await _environment(request, "development", caller, None)


@router.post("/environments/{env_name}/predict", openapi_extra=MODEL_INPUT)
async def environment_predict(env_name: str, request: Request, caller: PublicPredictor) -> Response:
    """Run the version an environment serves."""
    return await _environment(request, env_name, caller, None)


@router.post("/model/{model_id}/deployment/{deployment_id}/predict", openapi_extra=MODEL_INPUT)
async def model_deployment_predict(
    model_id: str, deployment_id: str, request: Request, caller: PublicPredictor
) -> Response:
    return await _deployment(request, deployment_id, caller, model_id)


@router.post("/model/{model_id}/production/predict", openapi_extra=MODEL_INPUT)
async def model_production_predict(
    model_id: str, request: Request, caller: PublicPredictor
) -> Response:
    return await _environment(request, "production", caller, model_id)


@router.post("/model/{model_id}/development/predict", openapi_extra=MODEL_INPUT)
async def model_development_predict(
    model_id: str, request: Request, caller: PublicPredictor
) -> Response:
    return await _environment(request, "development", caller, model_id)


@router.post("/model/{model_id}/environments/{env_name}/predict", openapi_extra=MODEL_INPUT)
async def model_environment_predict(
    model_id: str, env_name: str, request: Request, caller: PublicPredictor
) -> Response:
    return await _environment(request, env_name, caller, model_id)
