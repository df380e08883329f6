"""Open Inference Protocol v2 routes: a translation over the PredictionService, nothing more.

Model names. A model is `owner/name`, and that is its name here, in URLs and in metadata
alike: `/v2/models/demo/iris/infer`. tritonclient and KServe's clients put the name into the
path as is (a slash stays a slash), and a client that escapes it (`demo%2Firis`) reaches the
same route, since the server decodes the path before routing. There is no one-segment alias
(`demo--iris`): `--` may occur inside an owner or a name, so it would be ambiguous.
A version is the version number (`/v2/models/demo/iris/versions/1/infer`); without one, the
latest ready version answers, as everywhere in foretell.

Inference runs through the one prediction path and waits up to the server's max wait: each one
is recorded, and the response's `parameters.prediction_id` names its record under
/v1/predictions (its `id` echoes the request's, or is that same record id when it had none).
Tensors are translated as `tensors` describes; inputs may also come as binary data (see
`binary`; a file input's BYTES so sent are the file's bytes); responses are always JSON,
whatever `binary_data` an output asks for (tritonclient reads either). Request-level parameters
are ignored.

Health: a 200 means yes and a 400 no, as the protocol says (and Triton does). The server is
ready when every model has a version ready; a model is ready when the version that would answer
is. Errors are `{"error": "..."}` with the status of foretell's error table, except that input
the model's schema rejects is a 400 here, like every other bad request in this protocol.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Deployer, Reader
from foretell.api.body import documented, parse_body
from foretell.api.dialects import sync
from foretell.api.dialects.oip_v2 import binary, dataplane, generate, repository, specs
from foretell.api.dialects.oip_v2.schemas import (
    InferenceRequest,
    RepositoryIndexRequest,
    RepositoryModelRequest,
)
from foretell.api.errors import dialect
from foretell.api.hotpath import Call, hot_route
from foretell.api.openapi import errors
from foretell.api.responses import Json
from foretell.domain.access import Principal, Scope
from foretell.errors import ForetellError, InvalidInput
from foretell.service import PredictionService, VersionView

TAG = "oip-v2"
router = APIRouter(prefix="/v2", tags=[TAG])
_INFER = errors(404, 429, 500, 503)

MODEL = "/models/{owner}/{name}"
VERSION = "/versions/{version}"
_INDEX = documented(RepositoryIndexRequest)


def _error(exc: ForetellError, status: int) -> tuple[int, dict[str, str]]:
    if isinstance(exc, InvalidInput):
        return 400, {"error": exc.message}
    if isinstance(exc, sync.ModelFailed):
        return 500, {"error": f"model '{exc.model}' failed: {exc.message}"}
    return status, {"error": exc.message}


# Everything under /v2 answers in this shape, an unknown path too: tritonclient reads no other.
dialect(TAG, _error, prefix="/v2")
# The generate extension's text routes (Triton's, KServe's): see `generate`.
router.include_router(generate.router)


@router.get("")
async def server_metadata(request: Request, caller: Reader) -> Response:
    extensions = list(repository.HTTP_EXTENSIONS)
    return Json({"name": "foretell", "version": request.app.version, "extensions": extensions})


# Health stays open, like every probe: orchestrators call it without a key.
@router.get("/health/live")
async def server_live() -> Response:
    return Json({"live": True})


@router.get("/health/ready", responses=errors(400))
async def server_ready(request: Request) -> Response:
    ready = state.service(request).catalog.readiness().models_ready
    return Json({"ready": ready}, status_code=200 if ready else 400)


@router.get(MODEL, responses=errors(400, 404))
async def model_metadata(owner: str, name: str, request: Request, caller: Reader) -> Response:
    return _metadata(request, _version(state.service(request), owner, name, None, caller), caller)


@router.get(MODEL + VERSION, responses=errors(400, 404))
async def version_metadata(
    owner: str, name: str, version: str, request: Request, caller: Reader
) -> Response:
    found = _version(state.service(request), owner, name, version, caller)
    return _metadata(request, found, caller)


@router.get(MODEL + "/ready", responses=errors(400, 404))
async def model_ready(owner: str, name: str, request: Request, caller: Reader) -> Response:
    return _ready(_version(state.service(request), owner, name, None, caller))


@router.get(MODEL + VERSION + "/ready", responses=errors(400, 404))
async def version_ready(
    owner: str, name: str, version: str, request: Request, caller: Reader
) -> Response:
    return _ready(_version(state.service(request), owner, name, version, caller))


# Triton's configuration, statistics and repository extension (see `repository`).
@router.get(MODEL + "/config", responses=errors(400, 404, 503))
async def model_config(owner: str, name: str, request: Request, caller: Reader) -> Response:
    found = _version(state.service(request), owner, name, None, caller)
    return Json(repository.config(found))


@router.get(MODEL + VERSION + "/config", responses=errors(400, 404, 503))
async def version_config(
    owner: str, name: str, version: str, request: Request, caller: Reader
) -> Response:
    found = _version(state.service(request), owner, name, version, caller)
    return Json(repository.config(found))


@router.get("/models/stats")
async def all_stats(request: Request, caller: Reader) -> Response:
    return Json(repository.statistics(state.service(request), caller))


@router.get(MODEL + "/stats", responses=errors(404))
async def model_stats(owner: str, name: str, request: Request, caller: Reader) -> Response:
    return Json(repository.statistics(state.service(request), caller, owner, name))


@router.get(MODEL + VERSION + "/stats", responses=errors(400, 404))
async def version_stats(
    owner: str, name: str, version: str, request: Request, caller: Reader
) -> Response:
    service = state.service(request)
    return Json(repository.statistics(service, caller, owner, name, version))


@router.post(
    "/repository/index",
    responses=errors(400),
    # tritonclient sends no body; Triton's `{"ready": true}` lists only the ready versions.
    openapi_extra={"requestBody": {**_INDEX["requestBody"], "required": False}},
)
async def repository_index(request: Request, caller: Reader) -> Response:
    raw = await request.body()
    settings = state.settings(request)
    asked = (
        parse_body(raw, RepositoryIndexRequest, max_depth=settings.max_json_depth)
        if raw.strip()
        else RepositoryIndexRequest()
    )
    return Json(repository.index(state.service(request), caller, asked.ready))


_REPOSITORY_MODEL = "/repository" + MODEL
# Either body may be empty: tritonclient sends `{}` to load, `{"parameters": {...}}` to unload.
_MODEL_REQUEST = {
    "requestBody": {**documented(RepositoryModelRequest)["requestBody"], "required": False}
}


@router.post(
    _REPOSITORY_MODEL + "/load",
    responses=errors(400, 404, 503),
    openapi_extra=_MODEL_REQUEST,
)
async def repository_load(owner: str, name: str, request: Request, caller: Deployer) -> Response:
    """Start every version of the model that is not running; answers once each is ready."""
    asked = await _model_request(request)
    repository.check_load_parameters(asked.parameters or {})
    await repository.load(state.service(request), owner, name, caller)
    return Json({})


@router.post(
    _REPOSITORY_MODEL + "/unload",
    responses=errors(400, 404),
    openapi_extra=_MODEL_REQUEST,
)
async def repository_unload(owner: str, name: str, request: Request, caller: Deployer) -> Response:
    """Drain and stop every version of the model; its infer answers "not ready" until a load."""
    asked = await _model_request(request)
    repository.check_unload_parameters(asked.parameters or {})
    await repository.unload(state.service(request), owner, name, caller)
    return Json({})


async def _model_request(request: Request) -> RepositoryModelRequest:
    raw = await request.body()
    if not raw.strip():
        return RepositoryModelRequest()
    depth = state.settings(request).max_json_depth
    return parse_body(raw, RepositoryModelRequest, max_depth=depth)


def _version(
    service: PredictionService, owner: str, name: str, version: str | None, caller: Principal
) -> VersionView:
    return dataplane.version(service, owner, name, version, caller)


def _metadata(request: Request, version: VersionView, caller: Principal) -> Response:
    return Json(dataplane.metadata(state.service(request), version, caller))


def _ready(version: VersionView) -> Response:
    ready = version.ready
    body = {"name": version.slug, "ready": ready}
    return Json(body, status_code=200 if ready else 400)


async def infer(call: Call) -> Response:
    """Either infer route, whichever lane it came in by."""
    params = call.params
    version = _version(
        call.service, params["owner"], params["name"], params.get("version"), call.caller
    )
    found = sync.answering(version)  # a model that cannot answer says so before its body is read
    head, blob = binary.split(call.body, call.headers.get(binary.HEADER))
    body = parse_body(head, InferenceRequest, max_depth=call.settings.max_json_depth)
    wanted = [o.name for o in body.outputs or ()] or None  # none named: every output
    files = specs.file_inputs(found.input_schema) if blob else ()
    prediction, outputs = await dataplane.infer(
        call.service,
        call.settings,
        call.caller,
        version,
        body.inputs,
        binary.tensors(body.inputs, blob, files),
        wanted,
    )
    response: dict[str, Any] = {
        "model_name": version.slug,
        "model_version": str(version.number),
        "id": body.id if body.id is not None else prediction.id,
        "parameters": {"prediction_id": prediction.id},
        "outputs": outputs,
    }
    return Json(response)


# Served by api.hotpath ahead of FastAPI's router, in this dialect's error shapes.
for _name, _path in (("model_infer", MODEL), ("version_infer", MODEL + VERSION)):
    hot_route(
        router,
        "POST",
        _path + "/infer",
        infer,
        scope=Scope.PREDICT,
        anonymous=True,
        name=_name,
        openapi_extra=documented(InferenceRequest),
        responses=_INFER,
    )
