"""Webhooks: which events a prediction sends where, and (next) their durable, signed delivery."""

from foretell.webhooks.events import DEFAULT_EVENTS, EVENTS, WebhookEvent
from foretell.webhooks.targets import check_target

__all__ = ["DEFAULT_EVENTS", "EVENTS", "WebhookEvent", "check_target"]
