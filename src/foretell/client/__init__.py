"""A small HTTP client for the native API."""

from foretell.client.client import ApiError, AsyncClient, Client, Unreachable
from foretell.client.events import StreamCut, StreamEvent

__all__ = ["ApiError", "AsyncClient", "Client", "StreamCut", "StreamEvent", "Unreachable"]
