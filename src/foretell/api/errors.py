"""Domain errors → HTTP, in one table; the handler walks the class hierarchy to find the row."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from foretell import errors
from foretell.api.responses import Json
from foretell.manifest.schema import field_error

log = logging.getLogger(__name__)

STATUS: dict[type[errors.ForetellError], int] = {
    errors.InvalidRequest: 400,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedEncoding: 415,
    errors.UnsupportedMediaType: 415,
    errors.RangeNotSatisfiable: 416,
    errors.HeadTooLarge: 431,
    errors.ReadTimedOut: 408,
    errors.InvalidInput: 422,
    # A pushed model folder (the route's body) that cannot be served: the caller's to fix.
    errors.ArchiveInvalid: 422,
    errors.ManifestError: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.RateLimited: 429,
    errors.TooManyUnfinished: 429,
    errors.NotFound: 404,
    errors.PredictionFinished: 409,
    errors.NoWebhookEvent: 409,
    errors.Overloaded: 429,
    errors.ModelNotReady: 503,
    errors.ServerStopping: 503,
    errors.BodiesInFlightFull: 503,
    errors.ConnectionsFull: 503,
    errors.ModelLoadFailed: 503,
    errors.StoreUnavailable: 503,
    errors.FileGone: 410,
    errors.StorageFull: 507,
    errors.ForetellError: 500,
}


def status_for(exc: errors.ForetellError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


# Every credential form accepted, so a client that got it wrong learns the others.
WWW_AUTHENTICATE = 'Bearer realm="foretell", Token realm="foretell", Api-Key realm="foretell"'


# Every error answer of foretell's own names its kind here (errors.ForetellError.code), beside
# whatever body its dialect writes: a client tells a model not ready from a server stopping by
# this, not by parsing a message meant for people; and no seed's body shape changes for it.
ERROR_CODE = "X-Error-Code"


def headers_for(exc: errors.ForetellError) -> dict[str, str]:
    """The headers of `exc`'s answer, in every dialect: its code (ERROR_CODE), and what the
    error calls for (Retry-After, WWW-Authenticate, ...)."""
    return {ERROR_CODE: exc.code, **_called_for(exc)}


def _called_for(exc: errors.ForetellError) -> dict[str, str]:
    if isinstance(
        exc,
        errors.ModelNotReady
        | errors.ServerStopping
        | errors.Overloaded
        | errors.RateLimited
        | errors.TooManyUnfinished
        | errors.BodiesInFlightFull
        | errors.ConnectionsFull
        | errors.StoreUnavailable
        | errors.StorageFull,
    ):
        return {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, errors.HeadTooLarge | errors.ReadTimedOut):
        # What is left of the request cannot be told from the next one: the connection ends.
        return {"Connection": "close"}
    if isinstance(exc, errors.Unauthenticated):
        return {"WWW-Authenticate": WWW_AUTHENTICATE}
    if isinstance(exc, errors.RangeNotSatisfiable):  # RFC 9110: what the range could have been
        return {"Content-Range": f"bytes */{exc.size}"}
    if isinstance(exc, errors.UnsupportedEncoding):  # RFC 7694: the codings it would take
        return {"Accept-Encoding": ", ".join(exc.supported)}
    return {}


def native_body(exc: errors.ForetellError) -> dict[str, Any]:
    """FastAPI's own shapes: a list of field errors for bad input, else a message."""
    if isinstance(exc, errors.InvalidInput):
        return {"detail": [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors]}
    if isinstance(exc, errors.ServerStopping) and exc.prediction_id is not None:
        # The record is kept: its id, as a create's answer gives it, to GET it later by.
        path = f"/v1/predictions/{exc.prediction_id}"
        return {"detail": exc.message, "id": exc.prediction_id, "urls": {"get": path}}
    return {"detail": exc.message}


# How a wire dialect writes an error: (status, body) from the error and its mapped status. The
# status is mapped here, once; a dialect may only change it where its seed documents another.
DialectBody = Callable[[errors.ForetellError, int], tuple[int, Any]]
_DIALECTS: dict[str, DialectBody] = {}
# A dialect that owns a whole path prefix (OIP's /v2) also answers there what no route took:
# an unknown path, a body refused before routing. Its clients read no other error shape.
_PREFIXES: dict[str, str] = {}
_UNEXPECTED = "internal error ({}); the server log has the details"


def dialect(tag: str, body: DialectBody, *, prefix: str | None = None) -> None:
    """Render errors of routes tagged `tag` (their router's tag) with `body`; with `prefix`,
    also of any request under it that no route took."""
    _DIALECTS[tag] = body
    if prefix is not None:
        _PREFIXES[prefix] = tag


def dialect_of(request: Request) -> str | None:
    """The wire dialect of the route that took `request`: its router's tag, if one renders;
    else the dialect owning the request's path, if any."""
    tag = dialect_of_tags(getattr(request.scope.get("route"), "tags", ()))
    return tag if tag is not None else dialect_of_path(request.scope["path"])


def dialect_of_tags(tags: Iterable[object]) -> str | None:
    """The wire dialect that renders the errors of a route with `tags`, if one does."""
    for tag in tags:
        if tag in _DIALECTS:
            return str(tag)
    return None


def dialect_of_path(path: str) -> str | None:
    """The dialect whose prefix `path` is under, for answers given before or without routing."""
    for prefix, tag in _PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return tag
    return None


def error_response(exc: Exception, dialect: str | None = None) -> Response:
    """The answer to any exception a route raised: the one mapping, for either lane, written
    the way the route's wire dialect (None: the native one) writes errors."""
    render = _DIALECTS.get(dialect) if dialect is not None else None
    if render is not None:
        if isinstance(exc, HTTPException):  # 405, a streamed 413: their status stands
            status, body = render(errors.ForetellError(str(exc.detail)), exc.status_code)
            return Json(body, status_code=status, headers=exc.headers)
        if not isinstance(exc, errors.ForetellError):
            if isinstance(exc, RequestValidationError):
                exc = errors.InvalidRequest(
                    "; ".join(
                        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                    )
                )
            else:
                log.error("unexpected error answering a request", exc_info=exc)
                exc = errors.ForetellError(_UNEXPECTED.format(type(exc).__name__))
        status, body = render(exc, status_for(exc))
        return Json(body, status_code=status, headers=headers_for(exc))
    if isinstance(exc, errors.ForetellError):
        return Json(native_body(exc), status_code=status_for(exc), headers=headers_for(exc))
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, HTTPException):
        return Json({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    log.error("unexpected error answering a request", exc_info=exc)
    detail = f"internal error ({type(exc).__name__}); the server log has the details"
    return Json({"detail": detail}, status_code=500)


async def _handle(request: Request, exc: Exception) -> Response:
    tag = dialect_of(request)
    if (
        tag is not None
        and isinstance(exc, HTTPException)
        and exc.status_code == 404
        and "route" not in request.scope
    ):  # no route took it: say which request that was, rather than Starlette's "Not Found"
        exc = errors.NotFound(f"no route {request.method} {errors.echo(request.scope['path'])}")
    return error_response(exc, tag)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette logs the traceback itself after this; the client gets JSON, not plain text.
    tag = dialect_of(request)
    render = _DIALECTS[tag] if tag is not None else None
    error = errors.ForetellError(_UNEXPECTED.format(type(exc).__name__))
    if render is not None:
        status, body = render(error, 500)
        return Json(body, status_code=status)
    return Json({"detail": error.message}, status_code=500)


async def _gone(request: Request, exc: Exception) -> Response:
    # A client that left mid-body is no server error: one line, no traceback, and an answer
    # that uvicorn drops, since there is nobody to send it to.
    log.debug("%s %s: the client left before its body was read", request.method, request.url.path)
    return Response(status_code=400)


def _validation_response(exc: RequestValidationError) -> Response:
    problems = list(exc.errors())
    bad_json = next((e for e in problems if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        where = bad_json["loc"][-1] if len(bad_json["loc"]) > 1 else 0
        reason = (bad_json.get("ctx") or {}).get("error", "JSON decode error")
        message = f"request body is not valid JSON: {reason} (at character {where})"
        return Json({"detail": message}, status_code=400)
    return Json({"detail": [field_error(e) for e in problems]}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(errors.ForetellError, _handle)
    app.add_exception_handler(RequestValidationError, _handle)
    app.add_exception_handler(HTTPException, _handle)
