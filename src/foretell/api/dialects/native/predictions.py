"""Seed 001's prediction endpoints: create (async, or wait with Prefer), get, list, cancel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Predictor, Reader
from foretell.api.body import documented, loads
from foretell.api.dialects.native import render
from foretell.api.dialects.native.forms import discard, read_form
from foretell.api.dialects.native.schemas import (
    PredictionBody,
    PredictionPage,
    PredictionRequest,
    read_request,
)
from foretell.api.durations import parse_cancel_after
from foretell.api.headers import check_length
from foretell.api.hotpath import Call, hot_route
from foretell.api.openapi import errors
from foretell.api.prefer import parse_prefer
from foretell.api.request_id import request_id
from foretell.api.responses import Json
from foretell.api.sse import EventStream
from foretell.domain import ModelRef, PredictionStatus
from foretell.domain.access import Principal, Scope
from foretell.domain.model import NAME_PATTERN
from foretell.errors import (
    InvalidInput,
    InvalidRequest,
    ModelNotReady,
    NotFound,
    Overloaded,
    TooManyUnfinished,
    echo,
)
from foretell.service import NewPrediction, PredictionService
from foretell.service.stream import StreamPosition

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
# What a create is refused with before its record exists (afterwards the record may name files).
_NOT_CREATED = (
    RequestValidationError,  # the body, as PredictionRequest reads it
    InvalidRequest,
    InvalidInput,
    NotFound,
    ModelNotReady,
    Overloaded,
    TooManyUnfinished,
)


def _flag(name: str, value: str | None) -> bool:
    check_length(name, value or "")
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    shown = echo(value or "")
    raise InvalidRequest(f"header {name}: '{shown}' is not a boolean; use true or false")


def _wants_events(accept: str | None) -> bool:
    """Whether an Accept header asks for the event stream (as EventSource's requests do)."""
    return accept is not None and "text/event-stream" in accept.lower()


async def _events(
    service: PredictionService,
    stall_s: float,
    prediction_id: str,
    caller: Principal,
    since: StreamPosition | None,
    headers: dict[str, str] | None = None,
) -> EventStream:
    """The prediction's event stream; its refusals (not found, a position past the record) are
    raised here, before any event, so that they answer in JSON."""
    events = await service.stream(prediction_id, caller, since)
    return EventStream(events, stall_s=stall_s, headers=headers)


async def create(call: Call) -> Response:
    """POST /v1/predictions, for both lanes (see api.hotpath); declared below."""
    headers = call.headers
    stored: Sequence[str] = ()  # files a multipart body's parts stored
    if call.stream is None:
        data = loads(call.body, max_depth=call.settings.max_json_depth)
    else:  # multipart: a `json` part and file parts (forms)
        files, content_type = call.service.files, headers.get("content-type", "")
        data, stored = await read_form(content_type, call.stream, call.caller, files, call.settings)
    try:
        body = read_request(data)
        streaming = body.stream or _wants_events(headers.get("accept"))
        preferences = parse_prefer(headers.getlist("prefer"), max_wait=call.settings.max_wait_s)
        cancel_after = headers.get("cancel-after")
        prediction = await call.service.create(
            NewPrediction(
                model=body.model,
                input=body.input,
                webhook=body.webhook,
                validate_input=_flag("Validate-Input", headers.get("validate-input")),
                wait_s=None if streaming else preferences.wait,
                cancel_after_s=parse_cancel_after(cancel_after) if cancel_after else None,
                caller=call.caller,
                request_id=request_id(),
            )
        )
    except _NOT_CREATED:
        if stored:  # refused before any record could name them
            await discard(call.service.files, call.caller, stored)
        raise
    location = {"Location": f"/v1/predictions/{prediction.id}"}
    if streaming:  # the record is made; the answer is its events as they happen
        location["X-Prediction-Id"] = prediction.id
        return await _events(
            call.service, call.settings.stream_stall_s, prediction.id, call.caller, None, location
        )
    if preferences.wait:
        location["Preference-Applied"] = f"wait={preferences.wait}"
    return Json(render.prediction(prediction), status_code=201, headers=location)


hot_route(
    router,
    "POST",
    "",
    create,
    scope=Scope.PREDICT,
    name="create_prediction",
    headers={
        "prefer": Annotated[
            list[str] | None,
            Header(description="wait=N (1-60 s) waits for the result; other preferences ignored"),
        ],
        "validate_input": Annotated[
            str | None, Header(description="true: reject invalid input with 422 before queueing")
        ],
        "cancel_after": Annotated[
            str | None,
            Header(
                description="deadline, e.g. 30s or 1m30s: aborted if not started by then, "
                "canceled if still running"
            ),
        ],
    },
    status_code=201,
    responses={
        201: {"model": PredictionBody},
        200: {
            "description": 'with "stream": true or Accept: text/event-stream: the '
            "prediction's events, as GET /v1/predictions/{id}/stream sends them; the record's "
            "id in X-Prediction-Id and Location",
            "content": {"text/event-stream": {}},
        },
        **errors(404, 429, 503),
    },
    openapi_extra=documented(PredictionRequest),
)


@router.get("/{prediction_id}", responses={200: {"model": PredictionBody}, **errors(400, 404)})
async def get_prediction(
    prediction_id: str,
    request: Request,
    caller: Reader,
    prefer: Annotated[
        list[str] | None,
        Header(
            description="wait=N (1-60 s) answers once the prediction has ended, or after N "
            "seconds with it as it then stands; whichever API process runs it"
        ),
    ] = None,
) -> Response:
    preferences = parse_prefer(
        request.headers.getlist("prefer"), max_wait=state.settings(request).max_wait_s
    )
    service = state.service(request)
    prediction = await service.get(prediction_id, caller, wait_s=preferences.wait)
    headers = {"Preference-Applied": f"wait={preferences.wait}"} if preferences.wait else None
    return Json(render.prediction(prediction), headers=headers)


_STREAM_DOC = """The prediction's events as Server-Sent Events, as they happen, then `done`:
`status` ({"status"}), `logs` (the new log text), `output` (the new text of a text stream, one
JSON item of a list stream, or the whole output as JSON once for a model that does not stream),
`error` ({"status": "failed", "error"}) and `done` ({"status"}). Each event's id is the stream's
position after it: send the last one back as Last-Event-ID to resume exactly there, also after
the prediction ended (replayed from the record). A reader cut short (it fell behind, or the
server is stopping) gets an `error` event with {"reason", "resume": true} and no id."""


@router.get(
    "/{prediction_id}/stream",
    description=_STREAM_DOC,
    response_class=EventStream,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(400, 404)},
)
async def stream_prediction(
    prediction_id: str,
    request: Request,
    caller: Reader,
    last_event_id: Annotated[
        str | None,
        Header(description="the id of the last event received: the stream resumes after it"),
    ] = None,
) -> Response:
    check_length("Last-Event-ID", last_event_id or "")
    since = StreamPosition.parse(last_event_id) if last_event_id else None
    stall_s = state.settings(request).stream_stall_s
    return await _events(state.service(request), stall_s, prediction_id, caller, since)


@router.get("", responses={200: {"model": PredictionPage}, **errors(400)})
async def list_predictions(
    request: Request,
    caller: Reader,
    model: Annotated[
        str | None, Query(pattern=rf"^{NAME_PATTERN}/{NAME_PATTERN}$", description="owner/name")
    ] = None,
    status: PredictionStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    page = await state.service(request).list(
        model=ModelRef.parse(model) if model else None,
        status=status,
        cursor=cursor,
        limit=limit,
        viewer=caller,
        max_bytes=state.settings(request).max_page_bytes,
    )
    next_url = None
    if page.next_cursor:
        next_url = str(request.url.include_query_params(cursor=page.next_cursor))
    return Json({"results": [render.prediction(p) for p in page.items], "next": next_url})


@router.post(
    "/{prediction_id}/cancel", responses={200: {"model": PredictionBody}, **errors(404, 409)}
)
async def cancel_prediction(prediction_id: str, request: Request, caller: Predictor) -> Response:
    return Json(render.prediction(await state.service(request).cancel(prediction_id, caller)))
