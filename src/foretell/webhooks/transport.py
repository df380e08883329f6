"""The transport webhook deliveries go through: the outbound one, pinned to an address the
webhook guard passed (`foretell.outbound.transport` says why that matters)."""

from __future__ import annotations

from foretell.outbound.addresses import AddressRefused
from foretell.outbound.transport import PinnedTransport
from foretell.webhooks.targets import guard

# The receiver's name now resolves to an address webhooks are never sent to.
RefusedAddress = AddressRefused

__all__ = ["GuardedTransport", "RefusedAddress"]


class GuardedTransport(PinnedTransport):
    """Connects only where a webhook may go (FORETELL_WEBHOOK_ALLOW_PRIVATE for private ones)."""

    def __init__(self, *, allow_private: bool, max_connections: int) -> None:
        super().__init__(guard(allow_private), max_connections=max_connections)
