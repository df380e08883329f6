"""The error statuses in the OpenAPI document: what each operation really answers.

Two kinds of source. What follows from an operation's shape is added here, once, for all of
them: a key-guarded operation can answer 401, 403 and 429 (rate limit); one that reads a body,
400 (not JSON, nested too deep), 413, 415 (an encoding we cannot decode), 422 and 503 (request
bodies in flight at their cap). What follows from what a route does (it looks a model up, it
runs one, it reads a cursor) the route or its router declares with `errors(...)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_WHY: dict[int, str] = {
    400: "A malformed request: the message names the header, parameter or body field",
    401: "No API key, or one that is unknown, revoked or expired",
    403: "The API key's scope does not allow this operation",
    404: "No such model, version, deployment, prediction or key (or not visible to this key)",
    405: "The method is not allowed on this path",
    409: "The prediction is already finished, or has nothing to redeliver",
    410: "The file's bytes were removed (its retention passed, or it was deleted): when and why",
    413: "The request body is over the size limit",
    415: "The body's Content-Encoding is not one the server decodes",
    416: "The Range starts past the end of the file (Content-Range gives its size)",
    422: "A parameter or the body does not match the schema: each problem names its field",
    429: "Over a rate or queue limit: retry after the Retry-After header's seconds",
    500: "The model failed (in dialects whose seed answers a model's failure with 500)",
    503: "Not ready (the model is still loading), or the server is at a limit: retry after "
    "the Retry-After header's seconds",
    507: "Stored files are at their quota (max_files_bytes): retry after the Retry-After "
    "header's seconds, when older files expire",
}

_GUARDED = (401, 403, 429)
_WITH_BODY = (400, 413, 415, 422, 503)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses` for FastAPI: these error statuses, each with what it means here."""
    return {status: {"description": _WHY[status]} for status in statuses}


def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` list, on every operation, the statuses its shape implies."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    _complete(operation)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(operation: dict[str, Any]) -> None:
    implied: list[int] = []
    if operation.get("security"):
        implied += _GUARDED
    if "requestBody" in operation:
        implied += _WITH_BODY
    responses = operation.setdefault("responses", {})
    for status in implied:
        responses.setdefault(str(status), {"description": _WHY[status]})
