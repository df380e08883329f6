"""The Python client of foretell's native API: `Client` (blocking) and `AsyncClient` (asyncio),
the typed errors they raise, their retry policy and a stream's events."""

from foretell.client.aio import AsyncClient
from foretell.client.client import Client
from foretell.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    ForetellClientError,
    InvalidInput,
    ModelNotReady,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    ServerError,
    Unauthorized,
    Unavailable,
    Unreachable,
    WaitTimedOut,
)
from foretell.client.events import StreamCut, StreamEvent
from foretell.client.retry import Retry

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "ForetellClientError",
    "InvalidInput",
    "ModelNotReady",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "Retry",
    "ServerError",
    "StreamCut",
    "StreamEvent",
    "Unauthorized",
    "Unavailable",
    "Unreachable",
    "WaitTimedOut",
]
