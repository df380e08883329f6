"""OIP v2's generate extension (Triton's, KServe's text routes): `generate` answers one JSON
object, `generate_stream` one SSE `data:` object per piece of output as it comes.

Both go over the one prediction path: the request becomes a prediction of the model (recorded,
with its input validated), `generate` waits for it up to the server's max wait, and
`generate_stream` follows it through the service's event stream. The request is
`{"text_input": "...", "parameters": {...}, ...}`: `text_input` goes to the model's input of
that name, else to its `prompt` (foretell's text-generation models, Cog's name), else to its
`text`; any other field goes to the input it names; a parameter goes to the input it names
when the model has one, and is otherwise ignored (parameters are model-specific hints: a
client's `stream` or `temperature` must not fail a model that takes no such thing).
The response is `{"model_name", "model_version", "text_output"}`: a text output as it is, a list
of texts joined, a model's named outputs (an object) as fields of their own, anything else as
JSON text; `parameters.prediction_id` names the record under /v1/predictions. A failure before
the stream starts is a JSON error with its status; one after is a `data: {"error": "..."}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import PublicPredictor
from foretell.api.body import documented, parse_body
from foretell.api.dialects import sync
from foretell.api.dialects.oip_v2 import dataplane
from foretell.api.openapi import errors
from foretell.api.request_id import request_id
from foretell.api.responses import Json
from foretell.api.sse import EventStream
from foretell.domain import OutputStream
from foretell.domain.access import Principal
from foretell.errors import InvalidRequest
from foretell.service import NewPrediction, PredictionService, VersionView
from foretell.service.stream import StreamEvent

router = APIRouter()

MODEL = "/models/{owner}/{name}"
VERSION = "/versions/{version}"
# Where `text_input` goes: the first of these the model takes.
_TEXT_INPUTS = ("text_input", "prompt", "text")
_RESPONSES = errors(400, 404, 429, 500, 503)
_STREAM_RESPONSES = {200: {"content": {"text/event-stream": {}}}, **_RESPONSES}


class GenerateRequest(BaseModel):
    """Triton's generate request: any other field is an input of the model by its name."""

    model_config = ConfigDict(extra="allow")

    text_input: StrictStr = Field(description="the text the model generates from")
    parameters: dict[str, StrictStr | StrictInt | StrictFloat | StrictBool] | None = Field(
        None, description="model-specific: each one the model takes as an input goes to it"
    )


_BODY = documented(GenerateRequest)


@router.post(MODEL + "/generate", responses=_RESPONSES, openapi_extra=_BODY)
async def model_generate(
    owner: str, name: str, request: Request, caller: PublicPredictor
) -> Response:
    return await _generate(request, caller, owner, name, None)


@router.post(MODEL + VERSION + "/generate", responses=_RESPONSES, openapi_extra=_BODY)
async def version_generate(
    owner: str, name: str, version: str, request: Request, caller: PublicPredictor
) -> Response:
    return await _generate(request, caller, owner, name, version)


@router.post(
    MODEL + "/generate_stream",
    response_class=EventStream,
    responses=_STREAM_RESPONSES,
    openapi_extra=_BODY,
)
async def model_generate_stream(
    owner: str, name: str, request: Request, caller: PublicPredictor
) -> Response:
    return await _generate_stream(request, caller, owner, name, None)


@router.post(
    MODEL + VERSION + "/generate_stream",
    response_class=EventStream,
    responses=_STREAM_RESPONSES,
    openapi_extra=_BODY,
)
async def version_generate_stream(
    owner: str, name: str, version: str, request: Request, caller: PublicPredictor
) -> Response:
    return await _generate_stream(request, caller, owner, name, version)


async def _generate(
    request: Request, caller: Principal, owner: str, name: str, version: str | None
) -> Response:
    service, settings = state.service(request), state.settings(request)
    found, model_input = await _asked(request, service, caller, owner, name, version)
    prediction, output = await sync.predict(
        service, found, model_input, caller, wait_s=settings.max_wait_s, validate_input=True
    )
    named = {**_fields(output), **_named(found)}
    return Json({**named, "parameters": {"prediction_id": prediction.id}})


async def _generate_stream(
    request: Request, caller: Principal, owner: str, name: str, version: str | None
) -> Response:
    service, settings = state.service(request), state.settings(request)
    found, model_input = await _asked(request, service, caller, owner, name, version)
    # Created as an asynchronous prediction (recorded, input validated: a refusal is a JSON
    # 400 before any event), then followed through its event stream like any other reader's.
    prediction = await service.create(
        NewPrediction(
            model=found.ref,
            input=model_input,
            validate_input=True,
            caller=caller,
            request_id=request_id(),
        )
    )
    events = await service.stream(prediction.id, caller)
    chunks = _chunks(service, events, prediction.id, caller, _named(found))
    return EventStream(
        chunks,
        stall_s=settings.stream_stall_s,
        render=_wire,
        headers={"X-Prediction-Id": prediction.id},
    )


async def _asked(
    request: Request,
    service: PredictionService,
    caller: Principal,
    owner: str,
    name: str,
    version: str | None,
) -> tuple[VersionView, dict[str, Any]]:
    """The version asked for and the request as its model's input."""
    found = dataplane.version(service, owner, name, version, caller)
    schema = sync.answering(found).input_schema  # one that cannot answer says so first
    depth = state.settings(request).max_json_depth
    body = parse_body(await request.body(), GenerateRequest, max_depth=depth)
    return found, model_input(body, schema)


def model_input(body: GenerateRequest, schema: dict[str, Any]) -> dict[str, Any]:
    """The generate request as the model's input (see the module's docstring)."""
    takes = schema.get("properties") or {}
    text = next((n for n in _TEXT_INPUTS if n in takes), None)
    if text is None:
        raise InvalidRequest(
            "text_input: this model takes no text input (text_input, prompt or text); "
            f"its inputs are {', '.join(takes) or 'none'}: use /infer"
        )
    inputs: dict[str, Any] = {text: body.text_input, **(body.model_extra or {})}
    for key, value in (body.parameters or {}).items():
        if key in takes and key not in inputs:
            inputs[key] = value
    return inputs


def _named(version: VersionView) -> dict[str, str]:
    return {"model_name": version.slug, "model_version": str(version.number)}


def _fields(output: Any) -> dict[str, Any]:
    """An output as the response's fields: `text_output`, or a model's named outputs."""
    if isinstance(output, dict):
        return output
    if isinstance(output, str):
        return {"text_output": output}
    if isinstance(output, list) and all(isinstance(item, str) for item in output):
        return {"text_output": "".join(output)}
    return {"text_output": orjson.dumps(output).decode()}


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One SSE `data:` object of generate_stream, already encoded."""

    body: bytes


def _wire(event: Any) -> bytes | None:
    """A chunk as it is; the only other thing EventStream sends is its stall cut."""
    if isinstance(event, _Chunk):
        return event.body
    return _data({"error": f"the stream was cut: {orjson.loads(event.data)['reason']}"})


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


_UNKNOWN = object()  # the record's stream mode, until its first output event


async def _chunks(
    service: PredictionService,
    events: AsyncIterator[StreamEvent],
    prediction_id: str,
    caller: Principal,
    named: dict[str, str],
) -> AsyncIterator[_Chunk]:
    """The prediction's events as generate_stream's chunks: output and failure; the rest
    (status, logs) is for /v1/predictions' stream."""
    mode: Any = _UNKNOWN
    try:
        async for event in events:
            if event.event == "output" and mode is _UNKNOWN:
                # An output event's data is raw text or JSON as the record grew (its mode):
                # read once, from the record that made this event.
                mode = (await service.get(prediction_id, caller)).streamed
            body = _render(event, mode, named)
            if body is not None:
                yield _Chunk(body)
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


def _render(event: StreamEvent, mode: Any, named: dict[str, str]) -> bytes | None:
    if event.event == "output":
        output = event.data if mode is OutputStream.TEXT else orjson.loads(event.data)
        return _data({**_fields(output), **named})
    if event.event == "error":
        data = orjson.loads(event.data)
        if event.id is None:  # a cut: the reader fell behind, or the server is stopping
            return _data({"error": f"the stream was cut: {data.get('reason')}"})
        return _data({"error": data["error"]["message"]})
    if event.event == "done":
        status = orjson.loads(event.data)["status"]
        if status == "canceled":  # a failure has had its error event; a cancel has none
            return _data({"error": "the prediction was canceled"})
    return None
