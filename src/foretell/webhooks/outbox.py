"""Outbox: the service's side of webhooks — which events a record change causes, handing them to
delivery once committed, and what became of them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from foretell.config import Settings
from foretell.domain import (
    DeliveryAttempt,
    DeliveryStatus,
    OutboxEvent,
    Prediction,
    WebhookEventName,
    WebhookStatus,
)
from foretell.domain.webhook import summarize
from foretell.errors import NoWebhookEvent
from foretell.store.outbox import OutboxStore
from foretell.webhooks.delivery import Deliveries, Limits
from foretell.webhooks.policy import RetryPolicy
from foretell.webhooks.signing import SigningKeys

# The record as the API shows it: webhooks post exactly what GET /v1/predictions/{id} returns,
# and only the API layer knows that shape.
Render = Callable[[Prediction], str]

# Where each event falls among those of one run: its order is (run, this), never the clock's.
_RANK: dict[WebhookEventName, int] = {"start": 0, "logs": 1, "output": 2, "completed": 3}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    def __init__(
        self,
        store: OutboxStore,
        deliveries: Deliveries,
        render: Render,
        *,
        clock: Callable[[], datetime] = _utc_now,  # when events are made and queued
    ) -> None:
        self._store = store
        self._deliveries = deliveries
        self._render = render
        self._now = clock

    @classmethod
    def for_settings(cls, store: OutboxStore, settings: Settings, render: Render) -> Outbox:
        policy = RetryPolicy(
            timeout_s=settings.webhook_timeout_s,
            window_s=settings.webhook_retry_window_s,
            first_delay_s=settings.webhook_first_retry_s,
            max_delay_s=settings.webhook_max_retry_delay_s,
        )
        limits = Limits(settings.webhook_concurrency, settings.webhook_per_host)
        keys = SigningKeys.in_dir(settings.data_dir)
        deliveries = Deliveries(
            store, keys, policy, limits, allow_private=settings.webhook_allow_private
        )
        return cls(store, deliveries, render)

    async def start(self) -> int:
        """Start delivering, beginning with what a previous run left unsent (how many)."""
        return await self._deliveries.start()

    async def close(self) -> None:
        await self._deliveries.close()

    async def renew(self) -> int:
        """Renew this process's claims on the events it is delivering (see Deliveries)."""
        return await self._deliveries.renew()

    async def take(self) -> int:
        """Take over and deliver the unsettled events whose process stopped renewing them."""
        return await self._deliveries.take()

    def events(
        self, p: Prediction, *names: WebhookEventName, progress: bool = False
    ) -> list[OutboxEvent]:
        """The events among `names` that `p`'s webhook asks for, each carrying the record as it
        is now. Store them with the change that caused them, with `on_commit(events)` called
        back when that transaction ends.

        With `progress` (a running prediction's output or logs grew, service.task), only the
        first of them is made, ranked as its run's `logs`: the record it carries says all that
        grew, and the run's progress events, `output` or `logs`, go in the order they were made,
        before its end's own."""
        hook = p.webhook
        if hook is None:
            return []
        wanted = [name for name in names if name in hook["events"]]
        if not wanted:
            return []
        if progress:
            wanted = wanted[:1]
        # As a caller would GET it now; a status an earlier GET filled in is stale.
        body, now = self._render(replace(p, webhook_status=None)), self._now()
        events = [
            OutboxEvent(
                id=f"msg_{uuid.uuid4().hex}",
                prediction_id=p.id,
                event=name,
                url=hook["url"],
                body=body,
                created_at=now,
                seq=p.attempts * len(_RANK) + (_RANK["logs"] if progress else _RANK[name]),
                queued_at=now,
                request_id=p.request_id,
            )
            for name in wanted
        ]
        self._deliveries.expect(events)
        return events

    def on_commit(self, events: Sequence[OutboxEvent]) -> Callable[[asyncio.Future[None]], None]:
        """The callback for the write that stores `events`: deliver them once it committed; if it
        failed (the writer logged why), neither the change nor its events happened."""

        def deliver(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                self._deliveries.enqueue(events)
            else:
                self._deliveries.forget(events)

        return deliver

    async def show_status(self, predictions: Sequence[Prediction]) -> None:
        """Fill in each record's `webhook_status` from its events' deliveries."""
        hooked = [p for p in predictions if p.webhook is not None]
        for p in predictions:
            if p.webhook is None:
                p.webhook_status = WebhookStatus.NONE
        if not hooked:
            return
        statuses = await self._store.statuses(p.id for p in hooked)
        for p in hooked:
            p.webhook_status = summarize(statuses.get(p.id, []), finished=p.status.terminal)

    async def log(self, prediction_id: str) -> list[tuple[OutboxEvent, list[DeliveryAttempt]]]:
        """A prediction's events in order, each with its attempts in order."""
        events, attempts = await asyncio.gather(
            self._store.events(prediction_id), self._store.attempts(prediction_id)
        )
        by_event: dict[str, list[DeliveryAttempt]] = {e.id: [] for e in events}
        for attempt in attempts:
            by_event.setdefault(attempt.event_id, []).append(attempt)
        return [(e, by_event[e.id]) for e in events]

    async def redeliver(self, p: Prediction) -> OutboxEvent:
        """Send `p`'s last event again, under its own webhook-id, with a fresh retry window.
        An event still being delivered (by this process or another) is left to that delivery."""
        if p.webhook is None:
            raise NoWebhookEvent(p.id, "it was created without a webhook")
        events = await self._store.events(p.id)
        if not events:
            asked = ", ".join(p.webhook["events"])
            raise NoWebhookEvent(
                p.id,
                f"it is {p.status} and has sent none of the events its webhook asks for "
                f"({asked}) yet",
            )
        last = events[-1]
        live = self._deliveries.live(last.id)
        if live is not None:
            return live  # its delivery is under way; the stored row may lag behind it
        stored = replace(last)
        last.status, last.next_attempt_at = DeliveryStatus.PENDING, None
        last.queued_at = self._now()
        if not await self._store.retake(last):
            return stored  # another API process is delivering it now
        self._deliveries.enqueue([last])
        return last
