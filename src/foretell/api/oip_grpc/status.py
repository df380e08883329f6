"""Domain errors → gRPC status codes, in one table (api/errors.py's for HTTP); the lookup walks
the class hierarchy to find the row.

The codes are Triton's where it has one for the case (a bad argument INVALID_ARGUMENT, an unknown
model NOT_FOUND, a model that cannot take requests now UNAVAILABLE, a model that failed
INTERNAL), since tritonclient.grpc callers test for them; a caller over its key's rate or
unfinished-prediction quota gets RESOURCE_EXHAUSTED, as gRPC's guide has it. Errors that say
when to retry carry a `retry-after` trailer in seconds, as HTTP's Retry-After."""

from __future__ import annotations

import logging

import grpc

from foretell import errors
from foretell.api.dialects import sync

log = logging.getLogger(__name__)

Code = grpc.StatusCode

CODES: dict[type[errors.ForetellError], grpc.StatusCode] = {
    errors.InvalidRequest: Code.INVALID_ARGUMENT,
    errors.PayloadTooLarge: Code.RESOURCE_EXHAUSTED,
    errors.ReadTimedOut: Code.DEADLINE_EXCEEDED,
    errors.InvalidInput: Code.INVALID_ARGUMENT,
    errors.Unauthenticated: Code.UNAUTHENTICATED,
    errors.Forbidden: Code.PERMISSION_DENIED,
    errors.RateLimited: Code.RESOURCE_EXHAUSTED,
    errors.TooManyUnfinished: Code.RESOURCE_EXHAUSTED,
    errors.NotFound: Code.NOT_FOUND,
    errors.PredictionFinished: Code.FAILED_PRECONDITION,
    errors.NoWebhookEvent: Code.FAILED_PRECONDITION,
    errors.Overloaded: Code.UNAVAILABLE,  # Triton's answer to a full queue
    errors.ModelNotReady: Code.UNAVAILABLE,
    errors.ServerStopping: Code.UNAVAILABLE,
    errors.BodiesInFlightFull: Code.UNAVAILABLE,
    errors.ConnectionsFull: Code.UNAVAILABLE,
    errors.ModelLoadFailed: Code.UNAVAILABLE,
    errors.StoreUnavailable: Code.UNAVAILABLE,
    sync.ModelFailed: Code.INTERNAL,
    errors.ForetellError: Code.INTERNAL,
}
UNEXPECTED = "internal error ({}); the server log has the details"


def code_for(exc: errors.ForetellError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return Code.INTERNAL


def of(exc: Exception, rpc: str) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """(code, details, trailing metadata) answering an RPC that raised `exc`."""
    if not isinstance(exc, errors.ForetellError):
        log.error("unexpected error answering %s", rpc, exc_info=exc)
        return Code.INTERNAL, UNEXPECTED.format(type(exc).__name__), ()
    message = exc.message
    if isinstance(exc, sync.ModelFailed):  # as OIP's HTTP routes say it
        message = f"model '{exc.model}' failed: {exc.message}"
    elif isinstance(exc, errors.Unauthenticated):  # its message speaks of HTTP headers
        message += " (over gRPC, as call metadata: authorization: Bearer <key>)"
    retry_after = getattr(exc, "retry_after_s", None)
    trailer = (("retry-after", str(retry_after)),) if retry_after is not None else ()
    return code_for(exc), message, trailer
