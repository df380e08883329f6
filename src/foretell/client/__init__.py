"""A small HTTP client for the native API."""

from foretell.client.client import ApiError, Client, Unreachable

__all__ = ["ApiError", "Client", "Unreachable"]
