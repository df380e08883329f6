"""SlashML's predict route: `{"model_input": …}` in, `{"id", "model_input", "model_response"}`
out, synchronously; errors in its `{"error", "full_message"}` envelope.

`model_id` is a deployment's id (as `GET /v1/models` lists it) or the model's `owner/name`
(url-encoded or not). The prediction is recorded like any other: its `id` is a native id."""

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
from foretell.errors import ForetellError, InvalidRequest, ModelNotReady
from foretell.service import VersionView

TAG = "slashml"
router = APIRouter(prefix="/model-deployment/v1", tags=[TAG], responses=errors(404, 500, 503))

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


def _error(exc: ForetellError, status: int) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, ModelNotReady):
        return 400, NOT_READY
    message = exc.message
    if isinstance(exc, sync.ModelFailed):
        status, message = 500, f"the model failed: {message} (prediction {exc.prediction_id})"
    elif status == 422:
        status = 400  # SlashML answers bad input with 400
    return status, {"error": message, "full_message": [message]}


dialect(TAG, _error)


def _version(request: Request, model_id: str, caller: Principal) -> VersionView:
    catalog = state.service(request).catalog
    if "/" in model_id:
        return catalog.lookup(model_id, caller)
    return catalog.by_id(model_id, caller)


@router.post("/models/{model_id:path}/predict")
async def predict(model_id: str, request: Request, caller: PublicPredictor) -> Response:
    """Run the model on `model_input` and answer with its response."""
    version = _version(request, model_id, caller)
    signature = sync.answering(version)
    body = await sync.json_body(request)
    if not isinstance(body, dict) or "model_input" not in body:
        raise InvalidRequest("request body must be a JSON object with a 'model_input' field")
    model_input = body["model_input"]
    prediction, response = await sync.predict(
        state.service(request),
        version,
        one_input(model_input, signature.input_schema, "model_input"),
        caller,
        wait_s=state.settings(request).max_wait_s,
    )
    return Json({"id": prediction.id, "model_input": model_input, "model_response": response})
