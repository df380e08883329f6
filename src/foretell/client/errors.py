"""What the client raises: an error answer typed by its status (and, where one status covers
several causes, its message), carrying what the server said.

ForetellError (foretell.errors)
└── ForetellClientError            anything the client raises
    ├── ApiError                   an error answer: status, code, message, body, retry_after
    │   ├── BadRequest             400  a malformed header, body or parameter
    │   ├── Unauthorized           401  no key, or one the server does not know
    │   ├── Forbidden              403  a key without the scope the call needs
    │   ├── NotFound               404  (410 too: a removed file)
    │   ├── Conflict               409  e.g. canceling a prediction that has ended
    │   ├── PayloadTooLarge        413  a body or file over the server's limit
    │   ├── InvalidInput           422  `fields`: each refused field and why
    │   ├── Overloaded             429  queue full, rate limited, too many unfinished
    │   ├── Unavailable            503  the server is stopping, its store down, at its cap
    │   │   └── ModelNotReady      503  the model is deploying, stopped or failed to load
    │   └── ServerError            other 5xx
    ├── Unreachable                no answer: refused, timed out, cut off
    ├── WaitTimedOut               wait() ran past its timeout (`prediction`: as it stood)
    └── StreamCut                  a stream dropped more often in a row than it resumes

These are the client's own classes, not foretell.errors' server-side ones: those are made from
what the server knows (a model's queue limit, a key's scope), the client only has the answer.
`code` is the server's, from the answer's X-Error-Code header (foretell.errors' codes), where it
sent one; else the class's."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from foretell import errors


class ForetellClientError(errors.ForetellError):
    """Base of everything the client raises: catch it for any failure of a call."""

    code = "client_error"


class ApiError(ForetellClientError):
    """An error answer: `status`, `code`, `message` (the server's detail as text), `body` (its
    JSON as sent), `detail` (the body's detail) and `retry_after` (seconds, where it said)."""

    code = "api_error"

    def __init__(
        self, status: int, detail: Any, body: Any = None, retry_after: float | None = None
    ) -> None:
        text = detail if isinstance(detail, str) else _summarize(detail)
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.detail = detail
        self.body = body if body is not None else {"detail": detail}
        self.retry_after = retry_after


class BadRequest(ApiError):
    code = "invalid_request"


class Unauthorized(ApiError):
    code = "unauthenticated"


class Forbidden(ApiError):
    code = "forbidden"


class NotFound(ApiError):
    code = "not_found"


class Conflict(ApiError):
    code = "conflict"


class PayloadTooLarge(ApiError):
    code = "payload_too_large"


class InvalidInput(ApiError):
    """A request the server refused field by field: `fields` maps each field's dotted path
    (`text`, `items.0`; outside the input, `body.model`) to what is wrong with it, and
    `errors` holds the server's entries whole (type, loc, msg, input, ctx)."""

    code = "invalid_input"

    def __init__(
        self, status: int, detail: Any, body: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status, detail, body, retry_after)
        self.errors: list[dict[str, Any]] = (
            [e for e in detail if isinstance(e, dict)] if isinstance(detail, list) else []
        )
        self.fields = {_field(e.get("loc", [])): str(e.get("msg")) for e in self.errors}


class Overloaded(ApiError):
    """Too much at once (429): retried by the client after `retry_after` seconds."""

    code = "overloaded"


class Unavailable(ApiError):
    """The server cannot take it now (503): retried by the client after `retry_after`."""

    code = "unavailable"


class ModelNotReady(Unavailable):
    """The model is deploying, stopped or failed to load (503)."""

    code = "model_not_ready"


class ServerError(ApiError):
    code = "server_error"


class Unreachable(ForetellClientError):
    """No answer from the server: refused, timed out or cut off."""

    code = "unreachable"

    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(f"cannot reach {url}: {cause or type(cause).__name__}")
        self.url = url


class WaitTimedOut(ForetellClientError, TimeoutError):
    """wait() or predict() ran past its timeout: `prediction` is the record as it last stood
    (still running on the server: wait again, or cancel it)."""

    code = "wait_timed_out"

    def __init__(self, prediction: dict[str, Any], timeout: float) -> None:
        super().__init__(
            f"prediction {prediction.get('id')} is still {prediction.get('status')} after "
            f"{timeout:g} s (the wait's timeout); wait again or cancel it"
        )
        self.prediction = prediction
        self.timeout = timeout


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: NotFound,
    413: PayloadTooLarge,
    422: InvalidInput,
    429: Overloaded,
    503: Unavailable,
}
# The header naming an error answer's kind (foretell.api.errors.ERROR_CODE).
ERROR_CODE = "x-error-code"
# The 503s about one model, where the others (stopping, store, connections) are the server's.
_MODEL_NOT_READY = frozenset({errors.ModelNotReady.code, errors.ModelLoadFailed.code})


def error_for(response: httpx.Response) -> ApiError:
    """The typed error of an error answer (its body read)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {"detail": response.text}
    detail = body.get("detail", body) if isinstance(body, dict) else body
    cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else ApiError
    code = response.headers.get(ERROR_CODE)
    if cls is Unavailable and code in _MODEL_NOT_READY:
        cls = ModelNotReady
    if cls is InvalidInput and not isinstance(detail, list):
        # A pushed folder's manifest or archive refused (422 with a message): no fields.
        cls = ApiError
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    error = cls(response.status_code, detail, body, retry_after)
    if code:
        error.code = code
    return error


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, math.ceil((when - (now or datetime.now(UTC))).total_seconds()))


def _field(loc: list[Any]) -> str:
    path = [str(p) for p in loc]
    if path[:2] == ["body", "input"]:
        path = path[2:]
    return ".".join(path)


def _summarize(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}"
            for e in detail
            if isinstance(e, dict)
        )
    return str(detail)
