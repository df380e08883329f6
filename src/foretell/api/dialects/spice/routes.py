"""Spice's prediction routes: `GET /v1/models/{name}/predict` (no body: the model reads its
bound dataset) and `POST /v1/predict` (several models at once, for ensembles and A/B tests).

`name` is a model's name alone when no other owner has a model of that name, else
`owner/name` (`GET /v1/models/{owner}/{name}/predict`). Every call is a recorded prediction.
Failures are `BadRequest` (400: an ambiguous model, one that needs an input body, a dataset that
cannot give the series; 404 for a model that does not exist, or that the key may not see) or
`InternalError` (500; 503 with Retry-After for a model still deploying, as in the other
dialects), in the seed's body; in an ensemble each member reports its own status and one failure
never fails the others."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import PublicPredictor
from foretell.api.body import documented, parse_body
from foretell.api.dialects import sync
from foretell.api.errors import dialect, headers_for, status_for
from foretell.api.openapi import errors
from foretell.api.responses import Json
from foretell.domain import ModelRef
from foretell.domain.access import Principal
from foretell.errors import ForetellError, InvalidRequest, ModelNotFound, ModelNotReady, NotFound
from foretell.service import VersionView

TAG = "spice"
router = APIRouter(prefix="/v1", tags=[TAG], responses=errors(400, 404, 500, 503))
# What a forecast model's error says when its dataset is at fault (runtimes/forecast.py).
_DATASET = "DatasetError: "


class Ensemble(BaseModel):
    model_config = ConfigDict(extra="forbid")

    predictions: list[dict[str, str]] = Field(
        min_length=1, max_length=64, description='[{"model_name": …}, …]: the members'
    )


def _error(exc: ForetellError, status: int) -> tuple[int, dict[str, Any]]:
    # Errors raised before a model is known (auth, a bad body) in the seed's envelope.
    kind = "InternalError" if status >= 500 else "BadRequest"
    return status, {"status": kind, "error_message": exc.message}


dialect(TAG, _error)


def _resolve(request: Request, name: str, caller: Principal) -> VersionView:
    """A model by `owner/name`, or by its name alone when that is unique."""
    catalog = state.service(request).catalog
    if "/" in name:
        return catalog.lookup(name, caller)
    owners = [m.owner for m in catalog.models(caller) if m.name == name]
    if len(owners) > 1:
        raise InvalidRequest(
            f"model name '{name}' is ambiguous: {', '.join(f'{o}/{name}' for o in owners)}; "
            "use owner/name"
        )
    if not owners:
        raise ModelNotFound(name)
    return catalog.version(ModelRef(owners[0], name), caller)


def _lookback(version: VersionView | None) -> int | None:
    if version is None:
        return None
    value = version.options.get("lookback")
    return value if isinstance(value, int) else None


# A member's answer: its status code, the seed's body, and headers for a single model's reply.
Outcome = tuple[int, dict[str, Any], dict[str, str]]


async def _forecast(request: Request, name: str, caller: Principal) -> Outcome:
    """One member's outcome, never raising."""
    started = time.perf_counter()
    version: VersionView | None = None

    def answer(
        status: int, kind: str, headers: dict[str, str] | None = None, **fields: Any
    ) -> Outcome:
        body: dict[str, Any] = {"status": kind, **fields, "model_name": name}
        if version is not None:
            body["model_version"] = str(version.number)
        body["lookback"] = fields.get("lookback", _lookback(version))
        body["duration_ms"] = round((time.perf_counter() - started) * 1000)
        return status, body, headers or {}

    try:
        version = _resolve(request, name, caller)
        signature = sync.answering(version)
        if signature.input_schema.get("required"):
            needs = ", ".join(signature.input_schema["required"])
            raise InvalidRequest(
                f"model '{version.slug}' needs an input body ({needs}); call it through "
                "POST /v1/predictions"
            )
        wait_s = state.settings(request).max_wait_s
        _, output = await sync.predict(state.service(request), version, {}, caller, wait_s=wait_s)
    except sync.ModelFailed as failed:
        if failed.message.startswith(_DATASET):
            return answer(400, "BadRequest", error_message=failed.message.removeprefix(_DATASET))
        return answer(500, "InternalError", error_message=failed.message)
    except ModelNotReady as loading:  # not the caller's fault: when to try again, as elsewhere
        status, headers = status_for(loading), headers_for(loading)
        return answer(status, "InternalError", headers, error_message=loading.message)
    except NotFound as missing:  # documented: 404, so another owner's model looks absent
        return answer(404, "BadRequest", error_message=missing.message)
    except ForetellError as refused:
        status = 400 if refused.code != "model_load_failed" else 500
        kind = "BadRequest" if status == 400 else "InternalError"
        return answer(status, kind, error_message=refused.message)
    if not isinstance(output, dict) or "prediction" not in output:
        return answer(
            500,
            "InternalError",
            error_message=f"model '{name}' is not a forecasting model: it gave no 'prediction'",
        )
    return answer(
        200,
        "Success",
        lookback=output.get("lookback", _lookback(version)),
        prediction=output["prediction"],
    )


@router.get("/models/{name}/predict")
async def predict(name: str, request: Request, caller: PublicPredictor) -> Response:
    """Forecast with one model from the latest points of its bound dataset."""
    status, body, headers = await _forecast(request, name, caller)
    return Json(_ordered(body), status_code=status, headers=headers)


@router.get("/models/{owner}/{name}/predict")
async def predict_owned(
    owner: str, name: str, request: Request, caller: PublicPredictor
) -> Response:
    """The same, naming the model's owner too."""
    status, body, headers = await _forecast(request, f"{owner}/{name}", caller)
    return Json(_ordered(body), status_code=status, headers=headers)


@router.post("/predict", openapi_extra=documented(Ensemble))
async def ensemble(request: Request, caller: PublicPredictor) -> Response:
    """Forecast with several models at once; each member reports its own outcome."""
    started = time.perf_counter()
    depth = state.settings(request).max_json_depth
    body = parse_body(await request.body(), Ensemble, max_depth=depth)
    names = []
    for index, member in enumerate(body.predictions):
        if "model_name" not in member:
            raise InvalidRequest(f"predictions[{index}]: needs a model_name")
        names.append(member["model_name"])
    members = await asyncio.gather(*(_forecast(request, n, caller) for n in names))
    return Json(
        {
            "duration_ms": round((time.perf_counter() - started) * 1000),
            "predictions": [_ordered(member) for _, member, _ in members],
        }
    )


_ORDER = ("status", "error_message", "model_name", "model_version", "lookback", "prediction")


def _ordered(body: dict[str, Any]) -> dict[str, Any]:
    """The seed's field order: status first, duration_ms last."""
    return {
        **{k: body[k] for k in _ORDER if k in body},
        **{k: v for k, v in body.items() if k not in _ORDER},
    }
