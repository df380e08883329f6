"""Webhook events as the outbox holds them, one delivery attempt each, and a record's summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

WebhookEventName = Literal["start", "output", "logs", "completed"]
EVENTS: tuple[WebhookEventName, ...] = ("start", "output", "logs", "completed")
# What most receivers want without asking: that it started, and how it ended.
DEFAULT_EVENTS: tuple[WebhookEventName, ...] = ("start", "completed")


class DeliveryStatus(StrEnum):
    """One event's delivery: waiting for its first try, retrying, done, or given up."""

    PENDING = "pending"
    FAILING = "failing"
    DELIVERED = "delivered"
    DEAD = "dead"

    @property
    def settled(self) -> bool:
        return self in (DeliveryStatus.DELIVERED, DeliveryStatus.DEAD)


class WebhookStatus(StrEnum):
    """A prediction's webhook as a whole (`webhook_status` on its record)."""

    NONE = "none"  # it has no webhook
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILING = "failing"
    DEAD = "dead"


@dataclass(slots=True)
class OutboxEvent:
    """One event of one prediction for one URL. `id` is its `webhook-id`, the same on every
    attempt; `body` is the prediction record as it was when the event happened."""

    id: str
    prediction_id: str
    event: WebhookEventName
    url: str
    body: str
    created_at: datetime
    seq: int  # orders one prediction's events: run (attempt) first, then start … completed
    status: DeliveryStatus = DeliveryStatus.PENDING
    # When its delivery was (last) asked for: its creation, or a redelivery. Retries stop a
    # retry window after this.
    queued_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    request_id: str | None = None  # its prediction's creating request's, sent as X-Request-Id


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One POST of an event: the status code it got, or the error that stopped it."""

    id: str
    event_id: str
    prediction_id: str
    event: WebhookEventName
    number: int
    at: datetime
    latency_s: float
    status_code: int | None
    error: str | None
    outcome: DeliveryStatus  # what the event's status became after it


def summarize(statuses: list[DeliveryStatus], *, finished: bool) -> WebhookStatus:
    """A prediction's webhook status from its events' (in the order they were sent): the worst
    wins among those not superseded. An event is superseded once a later one is delivered: every
    event carries the whole record, so the receiver has the newer state (and a redelivered last
    event clears an earlier dead one). With no events yet it is pending, unless the prediction
    has finished: then nothing it asked for is left to send."""
    for index in range(len(statuses) - 1, 0, -1):
        if statuses[index] is DeliveryStatus.DELIVERED:
            statuses = statuses[index:]
            break
    if DeliveryStatus.DEAD in statuses:
        return WebhookStatus.DEAD
    if DeliveryStatus.FAILING in statuses:
        return WebhookStatus.FAILING
    if DeliveryStatus.PENDING in statuses or not (statuses or finished):
        return WebhookStatus.PENDING
    return WebhookStatus.DELIVERED
