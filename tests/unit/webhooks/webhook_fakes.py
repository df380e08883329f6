"""Test doubles for webhook delivery: a wall clock that moves only when a retry waits, an
outbox store in memory, and a receiver behind httpx.MockTransport answering from a script."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from foretell.domain import DeliveryAttempt, DeliveryStatus, OutboxEvent, WebhookEventName
from foretell.store.outbox import Ahead
from foretell.webhooks.delivery import Deliveries, Limits
from foretell.webhooks.policy import RetryPolicy
from foretell.webhooks.signing import SigningKeys

T0 = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
SETTLE_WITHIN_S = 30.0  # real seconds; everything here runs on the fake clock in milliseconds


class FakeClock:
    """`now` for Deliveries' clock, `sleep` for its sleep: a retry's wait moves the clock on
    at once (and is recorded) instead of passing in real time."""

    def __init__(self) -> None:
        self.wall = T0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.wall

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.wall += timedelta(seconds=seconds)
        await asyncio.sleep(0)


class FakeOutboxStore:
    """OutboxStore in memory: `record` keeps each event's progress and attempts, committed at
    once; `settled(id)` waits until an event's delivery is delivered or dead."""

    def __init__(self, stored: Iterable[OutboxEvent] = ()) -> None:
        self.stored: dict[str, OutboxEvent] = {e.id: replace(e) for e in stored}
        self.attempts_made: list[DeliveryAttempt] = []
        self._settled: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def record(self, event: OutboxEvent, attempt: DeliveryAttempt | None) -> asyncio.Future[None]:
        self.stored[event.id] = replace(event)
        if attempt is not None:
            self.attempts_made.append(attempt)
        if event.status.settled:
            self._settled[event.id].set()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def unsettled(self) -> list[OutboxEvent]:
        return sorted(
            (replace(e) for e in self.stored.values() if not e.status.settled),
            key=lambda e: (e.seq, e.created_at),
        )

    # One process alone: it holds every event, so whatever is unsettled is its to take.
    async def take(self, limit: int) -> list[OutboxEvent]:
        return (await self.unsettled())[:limit]

    async def renew(self, ids: Iterable[str]) -> int:
        return len([i for i in ids if i in self.stored])

    async def ahead(self, event: OutboxEvent) -> Ahead:
        return Ahead([], blocked=False)

    async def retake(self, event: OutboxEvent) -> bool:
        self.stored[event.id] = replace(event)
        return True

    async def release(self) -> None:
        pass

    async def events(self, prediction_id: str) -> list[OutboxEvent]:
        return sorted(
            (replace(e) for e in self.stored.values() if e.prediction_id == prediction_id),
            key=lambda e: (e.seq, e.created_at),
        )

    async def statuses(self, prediction_ids: Iterable[str]) -> dict[str, list[DeliveryStatus]]:
        found: dict[str, list[DeliveryStatus]] = {}
        for prediction_id in prediction_ids:
            for e in await self.events(prediction_id):
                found.setdefault(prediction_id, []).append(e.status)
        return found

    async def attempts(self, prediction_id: str) -> list[DeliveryAttempt]:
        return [a for a in self.attempts_made if a.prediction_id == prediction_id]

    async def settled(self, *event_ids: str) -> list[OutboxEvent]:
        """The events once each is delivered or dead, as stored."""
        async with asyncio.timeout(SETTLE_WITHIN_S):
            for event_id in event_ids:
                await self._settled[event_id].wait()
        return [self.stored[event_id] for event_id in event_ids]

    def forget_settled(self, event_id: str) -> None:
        """Wait for the event to settle again (it was redelivered)."""
        self._settled[event_id].clear()

    def outcomes(self, event_id: str) -> list[tuple[int | None, DeliveryStatus]]:
        """(status code, what the event became) of each attempt at one event, in order."""
        return [(a.status_code, a.outcome) for a in self.attempts_made if a.event_id == event_id]


# What the receiver does with one request: a status code, (status, headers), an exception to
# raise (a connection error), or an asyncio.Event to wait on first (a busy or hanging receiver).
Answer = int | tuple[int, dict[str, str]] | Exception | asyncio.Event


@dataclass
class Received:
    url: str
    webhook_id: str
    event: str  # the "event" of the body our tests send: which of a prediction's events it is
    at: datetime
    headers: httpx.Headers
    body: bytes


@dataclass
class Receiver:
    """A scripted receiver: `answers[url]` are used in turn (the last one repeats), 204 by
    default. Counts requests in flight per host to show the per-host limit."""

    clock: FakeClock
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    in_flight: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    most_in_flight: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        url, host = str(request.url), request.url.netloc.decode()
        body = request.content
        self.received.append(
            Received(
                url,
                request.headers["webhook-id"],
                json.loads(body).get("event", ""),
                self.clock.now(),
                request.headers,
                body,
            )
        )
        script = self.answers.get(url, [204])
        answer = script.pop(0) if len(script) > 1 else script[0]
        self.in_flight[host] += 1
        self.most_in_flight[host] = max(self.most_in_flight[host], self.in_flight[host])
        async with self.arrived:
            self.arrived.notify_all()
        try:
            if isinstance(answer, asyncio.Event):
                await answer.wait()
                answer = 204
            if isinstance(answer, Exception):
                raise answer
            code, headers = answer if isinstance(answer, tuple) else (answer, {})
            return httpx.Response(code, headers=headers, stream=_Streamed(b"ok"))
        finally:
            self.in_flight[host] -= 1

    async def until(self, check: Callable[[Receiver], bool]) -> None:
        """Wait (on the requests' arrival, not on time) until `check(self)` holds."""
        async with asyncio.timeout(SETTLE_WITHIN_S), self.arrived:
            await self.arrived.wait_for(lambda: check(self))


class _Streamed(httpx.AsyncByteStream):
    """A body read as it arrives, as from a real connection (a plain `content=` counts as
    read already, and delivery streams what it reads)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._body


def event(
    prediction_id: str,
    name: WebhookEventName = "completed",
    *,
    url: str = "http://receiver.test/hook",
    seq: int = 3,
    at: datetime = T0,
) -> OutboxEvent:
    """An event as Outbox.events makes them; its body names the event for the Receiver."""
    return OutboxEvent(
        id=f"msg_{uuid.uuid4().hex}",
        prediction_id=prediction_id,
        event=name,
        url=url,
        body=f'{{"id": "{prediction_id}", "event": "{name}"}}',
        created_at=at,
        seq=seq,
        queued_at=at,
    )


class Harness:
    """One Deliveries over a fake clock, store and receiver; `open` starts it (closed after
    the test)."""

    def __init__(self, data_dir: Path) -> None:
        self.clock = FakeClock()
        self.store = FakeOutboxStore()
        self.receiver = Receiver(self.clock)
        self.keys = SigningKeys.in_dir(data_dir)
        self.opened: list[Deliveries] = []

    async def open(
        self,
        policy: RetryPolicy | None = None,
        limits: Limits | None = None,
        *,
        store: FakeOutboxStore | None = None,
    ) -> Deliveries:
        if store is not None:
            self.store = store
        deliveries = Deliveries(
            self.store,
            self.keys,
            policy or RetryPolicy(timeout_s=5.0, window_s=3600.0, first_delay_s=1.0),
            limits or Limits(),
            allow_private=False,
            transport=self.receiver.transport(),
            clock=self.clock.now,
            sleep=self.clock.sleep,
        )
        await deliveries.start()
        self.opened.append(deliveries)
        return deliveries
