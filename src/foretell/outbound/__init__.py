"""Connections the server opens for a caller (webhooks, input URLs): where they may go, and
pinned to the address that was checked."""
