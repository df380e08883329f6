"""What the synchronous dialects (SlashML, GPUX, Baseten, OIP v2) share: the JSON body, a
model that can answer now, and a finished prediction's output or the error that says why
there is none. Each dialect renders `ModelFailed` its own way."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from foretell.api import state
from foretell.api.body import loads
from foretell.api.request_id import request_id
from foretell.config import Settings
from foretell.domain import ErrorSource, Prediction, PredictionStatus
from foretell.domain.access import Principal
from foretell.errors import ForetellError, InvalidInput, InvalidRequest, ModelNotReady
from foretell.manifest import Signature
from foretell.service import NewPrediction, PredictionService, VersionView


class ModelFailed(ForetellError):
    """The model raised, foretell could not run it, or it gave no result in time: a 500."""

    def __init__(self, prediction: Prediction, reason: str) -> None:
        super().__init__(reason)
        self.prediction_id = prediction.id
        self.model = f"{prediction.owner}/{prediction.name}:{prediction.version_number}"


async def json_body(request: Request) -> Any:
    """The request's JSON, whatever its Content-Type (curl -d labels JSON as a form)."""
    return json_of(await request.body(), state.settings(request))


def json_of(body: bytes, settings: Settings) -> Any:
    """A body's JSON, or InvalidRequest saying where it is not (see api.body.loads)."""
    return loads(body, max_depth=settings.max_json_depth)


def answering(version: VersionView) -> Signature:
    """The signature of a version that can take a prediction now, else why it cannot:
    ModelNotReady while it builds, deploys or is stopped (even with its signature known)."""
    if version.not_ready:
        raise ModelNotReady(str(version.ref), version.status.value)
    if version.signature is None:
        raise version.load_error()
    return version.signature


async def predict(
    service: PredictionService,
    version: VersionView,
    model_input: dict[str, Any],
    caller: Principal,
    *,
    wait_s: int,
    record: bool = True,
    validate_input: bool = False,
) -> tuple[Prediction, Any]:
    """Run `model_input` on `version`, waiting up to `wait_s`: the prediction and its output,
    or the error that says why there is none (see `output`)."""
    prediction = await service.create(
        NewPrediction(
            model=version.ref,
            input=model_input,
            validate_input=validate_input,
            wait_s=wait_s,
            caller=caller,
            record=record,
            request_id=request_id(),
        )
    )
    return prediction, output(prediction, wait_s)


def output(prediction: Prediction, waited_s: int) -> Any:
    """A succeeded prediction's output. Input the model's schema refused is the caller's
    error (InvalidInput, with the fields); anything else is ModelFailed."""
    if prediction.status is PredictionStatus.SUCCEEDED:
        return prediction.output
    error = prediction.error
    if error is not None and error.source is ErrorSource.USER:
        raise InvalidInput(error.detail) if error.detail else InvalidRequest(error.message)
    if error is not None:
        raise ModelFailed(prediction, error.message)
    if prediction.status is PredictionStatus.CANCELED:  # unrecorded: stopped at the wait's end
        raise ModelFailed(prediction, f"no result within {waited_s} s; it was stopped")
    raise ModelFailed(
        prediction,
        f"no result within {waited_s} s: prediction {prediction.id} is "
        f"{prediction.status.value}; GET /v1/predictions/{prediction.id} for its outcome",
    )
