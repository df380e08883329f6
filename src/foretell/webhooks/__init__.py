"""Webhooks: which events a prediction sends where, their durable outbox and signed delivery."""

from foretell.webhooks.outbox import Outbox, Render
from foretell.webhooks.signing import SigningKeys
from foretell.webhooks.targets import check_target

__all__ = ["Outbox", "Render", "SigningKeys", "check_target"]
