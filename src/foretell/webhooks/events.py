"""The events a webhook can ask for (seed 001's filter names) and the default set."""

from __future__ import annotations

from typing import Literal

WebhookEvent = Literal["start", "output", "logs", "completed"]
EVENTS: tuple[WebhookEvent, ...] = ("start", "output", "logs", "completed")
# What most receivers want without asking: that it started, and how it ended.
DEFAULT_EVENTS: tuple[WebhookEvent, ...] = ("start", "completed")
