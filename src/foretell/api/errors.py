"""Domain errors → HTTP, in one table; the handler walks the class hierarchy to find the row."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from foretell import errors
from foretell.api.responses import Json
from foretell.manifest.schema import field_error

log = logging.getLogger(__name__)

STATUS: dict[type[errors.ForetellError], int] = {
    errors.InvalidRequest: 400,
    errors.PayloadTooLarge: 413,
    errors.InvalidInput: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.RateLimited: 429,
    errors.TooManyUnfinished: 429,
    errors.NotFound: 404,
    errors.PredictionFinished: 409,
    errors.NoWebhookEvent: 409,
    errors.Overloaded: 429,
    errors.ModelNotReady: 503,
    errors.ModelLoadFailed: 503,
    errors.ForetellError: 500,
}


def status_for(exc: errors.ForetellError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


# Every credential form accepted, so a client that got it wrong learns the others.
WWW_AUTHENTICATE = 'Bearer realm="foretell", Token realm="foretell", Api-Key realm="foretell"'


def headers_for(exc: errors.ForetellError) -> dict[str, str]:
    if isinstance(
        exc,
        errors.ModelNotReady | errors.Overloaded | errors.RateLimited | errors.TooManyUnfinished,
    ):
        return {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, errors.Unauthenticated):
        return {"WWW-Authenticate": WWW_AUTHENTICATE}
    return {}


def native_body(exc: errors.ForetellError) -> dict[str, Any]:
    """FastAPI's own shapes: a list of field errors for bad input, else a message."""
    if isinstance(exc, errors.InvalidInput):
        return {"detail": [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors]}
    return {"detail": exc.message}


def error_response(exc: Exception) -> Response:
    """The answer to any exception a route raised: the one mapping, for either lane."""
    if isinstance(exc, errors.ForetellError):
        return Json(native_body(exc), status_code=status_for(exc), headers=headers_for(exc))
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, HTTPException):
        return Json({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    log.error("unexpected error answering a request", exc_info=exc)
    detail = f"internal error ({type(exc).__name__}); the server log has the details"
    return Json({"detail": detail}, status_code=500)


async def _handle(_: Request, exc: Exception) -> Response:
    return error_response(exc)


async def _unexpected(_: Request, exc: Exception) -> Response:
    # Starlette logs the traceback itself after this; the client gets JSON, not plain text.
    detail = f"internal error ({type(exc).__name__}); the server log has the details"
    return Json({"detail": detail}, status_code=500)


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
    app.add_exception_handler(errors.ForetellError, _handle)
    app.add_exception_handler(RequestValidationError, _handle)
    app.add_exception_handler(HTTPException, _handle)
