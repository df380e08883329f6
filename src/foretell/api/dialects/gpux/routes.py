"""GPUX routes: `POST /predict` on the server's default model (of several, the one a request's
inputs pick), `POST /models/{owner}/{name}/predict` on any, `GET /health` and `GET /info`.

Answers only: no record is kept (GPUX clients never ask for one), so these predictions skip
the store's writer altogether; they still run through the one prediction path."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import PublicReader
from foretell.api.dialects import sync
from foretell.api.dialects.gpux import defaults, tensors
from foretell.api.errors import dialect
from foretell.api.hotpath import Call, hot_route
from foretell.api.openapi import errors
from foretell.api.responses import Json
from foretell.domain import ModelRef
from foretell.domain.access import Scope
from foretell.errors import ForetellError, InvalidInput
from foretell.manifest import Signature
from foretell.manifest.file_fields import FILE_FORMATS
from foretell.service import VersionView

TAG = "gpux"
# Every route resolves the default model (400 when there is none to choose).
router = APIRouter(tags=[TAG], responses=errors(400, 404, 500, 503))


def _error(exc: ForetellError, status: int) -> tuple[int, dict[str, str]]:
    if isinstance(exc, InvalidInput):
        return 400, {"detail": exc.message}  # seed 003 answers every bad input with 400
    if isinstance(exc, sync.ModelFailed):
        return 500, {"detail": f"Inference failed: {exc.message}"}
    return status, {"detail": exc.message}


dialect(TAG, _error)


async def predict_default(call: Call) -> Response:
    """POST /predict, whichever lane it came in by: on the default model the body's inputs
    pick (see `defaults`)."""
    candidates = defaults.candidates(call.service, call.settings, call.caller)
    if len(candidates) == 1:
        return await _predict(call, candidates[0])
    body = sync.json_of(call.body, call.settings)
    version = defaults.choose(candidates, body)
    return await _answer(call, version, sync.answering(version), body)


async def predict_named(call: Call) -> Response:
    """POST /models/{owner}/{name}/predict, whichever lane it came in by."""
    ref = ModelRef(call.params["owner"], call.params["name"])
    return await _predict(call, call.service.catalog.version(ref, call.caller))


async def _predict(call: Call, version: VersionView) -> Response:
    signature = sync.answering(version)  # before the body: not ready is said first
    return await _answer(call, version, signature, sync.json_of(call.body, call.settings))


async def _answer(call: Call, version: VersionView, signature: Signature, body: Any) -> Response:
    service, caller = call.service, call.caller
    named = tensors.inputs(body, signature.input_schema)
    wait_s = call.settings.max_wait_s

    async def run(inputs: dict[str, Any]) -> Any:
        _, output = await sync.predict(
            service, version, inputs, caller, wait_s=wait_s, record=False
        )
        return output

    if named.items:  # one prediction per item, side by side: the batcher groups them
        # A task group: when one item is refused or fails, the others are stopped with it.
        try:
            async with asyncio.TaskGroup() as group:
                runs = [group.create_task(run(item)) for item in named.items]
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # the first item's error answers for all
        return Json(tensors.batch_outputs([r.result() for r in runs]))
    output = await run(named.inputs)
    return Json(tensors.outputs(output, signature.output_schema, one_item=named.one_item))


hot_route(
    router,
    "POST",
    "/predict",
    predict_default,
    scope=Scope.PREDICT,
    anonymous=True,
    name="predict",
    description="Run the server's default model on a flat JSON object of named inputs.",
)
hot_route(
    router,
    "POST",
    "/models/{owner}/{name}/predict",
    predict_named,
    scope=Scope.PREDICT,
    anonymous=True,
    name="predict_model",
    description="Run any model the key may use, GPUX style.",
)


def _tensors(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "type": _type(prop), "shape": prop.get("x-shape")}
        for name, prop in schema.get("properties", {}).items()
    ]


def _type(prop: Any) -> str | None:
    """A tensor's dtype, else the JSON type; `file` for a file input; a union's choices
    joined ("array | file": demo/digits-image takes either)."""
    if not isinstance(prop, dict):
        return None
    if prop.get("format") in FILE_FORMATS:
        return "file"
    declared = prop.get("x-dtype") or prop.get("type")
    if isinstance(declared, str):
        return declared
    choices = prop.get("anyOf") or prop.get("oneOf") or declared
    if not isinstance(choices, list):
        return None
    named = [_type({"type": c} if isinstance(c, str) else c) for c in choices]
    return " | ".join(n for n in named if n) or None


def _described(version: VersionView) -> dict[str, Any]:
    signature = version.signature
    return {
        "name": version.slug,
        "version": version.number,
        "inputs": _tensors(signature.input_schema) if signature else [],
        "outputs": _tensors(signature.output_schema) if signature else [],
        "runtime": version.runtime,
        "status": version.status.value,
    }


@router.get("/health")
async def health(request: Request) -> Response:
    """Whether the default models (without one, every model) can answer now. Open, like every
    health probe, so it names a model only if that model is public: the first default model as
    `model`, and with several, each of them in `models`."""
    catalog = state.service(request).catalog
    configured = [ModelRef.parse(name) for name in state.settings(request).default_model]
    readiness = catalog.readiness(refs=configured) if configured else catalog.readiness()
    # The default models named must all answer; without, the server must be in service.
    ready = readiness.answering if configured else readiness.all_ready
    named = readiness.versions if configured else ()
    body: dict[str, Any] = {"status": "healthy" if ready else "unhealthy"}
    if named and named[0].public:
        body["model"] = str(named[0].ref)
    if len(named) > 1:
        body["models"] = [str(v.ref) for v in named if v.public]
    return Json(body, status_code=200 if ready else 503)


@router.get("/info")
async def info(request: Request, caller: PublicReader) -> Response:
    """The default model: name, version, inputs and outputs with type and shape, runtime. With
    several, the first one's, as a one-model client reads it, and each of them in `models`."""
    service = state.service(request)
    found = defaults.candidates(service, state.settings(request), caller)
    described = [_described(d) for d in found]
    if len(described) == 1:
        return Json(described[0])
    return Json({**described[0], "models": described})
