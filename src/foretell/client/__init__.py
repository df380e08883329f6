"""A small HTTP client for the native API; server-side errors arrive as the same classes."""

from foretell.client.client import ApiError, Client, Unreachable

__all__ = ["ApiError", "Client", "Unreachable"]
