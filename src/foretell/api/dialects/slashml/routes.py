"""SlashML's predict route: `{"model_input": …}` in, `{"id", "model_input", "model_response"}`
out, synchronously; errors in its `{"error", "full_message"}` envelope.

`model_id` is a deployment's id (as `GET /v1/models` lists it) or the model's `owner/name`
(url-encoded or not). The prediction is recorded like any other: its `id` is a native id."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Predictor
from foretell.api.dialects.inputs import one_input
from foretell.api.errors import dialect
from foretell.api.responses import Json
from foretell.domain import DeploymentStatus, ErrorSource, ModelRef, PredictionStatus
from foretell.domain.access import Principal
from foretell.errors import ForetellError, InvalidRequest, ModelNotReady
from foretell.service import Deployment, NewPrediction

TAG = "slashml"
router = APIRouter(prefix="/model-deployment/v1", tags=[TAG])

# Seed 000's answer for a model that is still being built or deployed, to the byte.
NOT_READY = {
    "error": "some error occured when requesting job status",
    "full_message": [
        "{'error': ErrorDetail(string='model not ready', code='permission_denied'), 'reasons': "
        "[ErrorDetail(string='model not ready', code='permission_denied'), "
        "ErrorDetail(string='model is still being built or deployed', "
        "code='permission_denied')]}"
    ],
}


class ModelFailed(ForetellError):
    """The model raised, or foretell could not run it."""


def _error(exc: ForetellError, status: int) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, ModelNotReady):
        return 400, NOT_READY
    if isinstance(exc, ModelFailed):
        status = 500
    elif status == 422:
        status = 400  # SlashML answers bad input with 400
    return status, {"error": exc.message, "full_message": [exc.message]}


dialect(TAG, _error)


def _deployment(request: Request, model_id: str, caller: Principal) -> Deployment:
    deployments = state.service(request).deployments
    if "/" in model_id:
        return deployments.resolve(ModelRef.parse(model_id), caller)
    return deployments.by_id(model_id, caller)


@router.post("/models/{model_id:path}/predict")
async def predict(model_id: str, request: Request, caller: Predictor) -> Response:
    """Run the model on `model_input` and answer with its response."""
    deployment = _deployment(request, model_id, caller)
    if deployment.status is DeploymentStatus.DEPLOYING:
        raise ModelNotReady(str(deployment.ref), deployment.status.value)
    if deployment.signature is None:
        raise deployment.load_error()
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict) or "model_input" not in body:
        raise InvalidRequest("request body must be a JSON object with a 'model_input' field")
    model_input = body["model_input"]
    wait_s = state.settings(request).max_wait_s
    prediction = await state.service(request).create(
        NewPrediction(
            model=deployment.ref,
            input=one_input(model_input, deployment.signature.input_schema, "model_input"),
            wait_s=wait_s,
            caller=caller,
        )
    )
    if prediction.status is PredictionStatus.SUCCEEDED:
        return Json(
            {"id": prediction.id, "model_input": model_input, "model_response": prediction.output}
        )
    error = prediction.error
    if error is not None and error.source is ErrorSource.USER:
        raise InvalidRequest(error.message)
    if error is not None:
        raise ModelFailed(f"the model failed: {error.message} (prediction {prediction.id})")
    raise ModelFailed(
        f"no response within {wait_s} s; the prediction goes on: GET /v1/predictions/"
        f"{prediction.id}"
    )
