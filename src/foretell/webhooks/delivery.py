"""Deliveries: POST committed outbox events to their receivers, and record every attempt.

Each prediction has a lane: its events go one at a time, in the order they happened, so a
receiver never sees `completed` before `start`. Lanes run concurrently, bounded overall and per
host, so a slow or dead receiver holds up only its own predictions' events — never predictions,
replicas or other receivers. Delivery is at least once: an attempt cut off by a stop is made
again on the next start with the same `webhook-id`, which is how a receiver tells a retry from a
new event.

Several API processes share the outbox (store.outbox): each event is delivered by the one process
that holds its claim: the one whose write made it, or one that took it over (`take`) once that
process stopped renewing (`renew`). Before each event, a lane takes the earlier unsettled events
of its prediction that nobody holds and sends them first, and waits while another process holds
one, so a receiver sees a prediction's events in order whichever process sends them. An event
another process took over meanwhile is dropped from the lane (its attempt here was not stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from foretell import metrics
from foretell.domain import DeliveryAttempt, DeliveryStatus, OutboxEvent
from foretell.store import ClaimLost
from foretell.store.outbox import OutboxStore
from foretell.webhooks.policy import RetryPolicy, retry_after_s, retryable
from foretell.webhooks.signing import SigningKeys

if TYPE_CHECKING:  # httpx (and its SSL context) load on the first delivery: see _http
    import httpx

log = logging.getLogger(__name__)

USER_AGENT = "foretell-webhooks/0.1"
TAKE_BATCH = 500  # events taken over at a time, until none is left
# A lane whose next event waits for another process to send an earlier one looks again this often.
BLOCKED_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class Limits:
    concurrency: int = 64  # attempts in flight, all receivers together
    per_host: int = 8  # attempts in flight to one receiver (host and port)
    response_bytes: int = 64 * 1024  # read this much of an answer at most, then hang up


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int | None
    error: str | None
    retry_after_s: float | None = None
    final: bool = False  # no point trying again, whatever the code says


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Deliveries:
    """Sends events once their transaction has committed (`enqueue`), and on `start` whatever
    a previous run left unsent. Knows every event from its creation (`expect`) until its
    delivery is settled and stored, so that a redelivery never races one under way.

    `transport` (default: the address guard over the network), `clock` (UTC, for retry times
    and signatures) and `sleep` (the wait before a retry) are injected so tests can answer
    and move time without a network or a sleep."""

    def __init__(
        self,
        outbox: OutboxStore,
        keys: SigningKeys,
        policy: RetryPolicy,
        limits: Limits,
        *,
        allow_private: bool,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._outbox = outbox
        self._keys = keys
        self._policy = policy
        self._limits = limits
        self._allow_private = allow_private
        self._rng = rng or random.Random()
        self._transport = transport
        self._now = clock
        self._sleep = sleep
        self._lanes: dict[str, deque[OutboxEvent]] = {}
        self._live: dict[str, OutboxEvent] = {}  # by id: being committed, queued or sent
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._hosts: dict[str, _HostSlots] = {}
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> int:
        """Take over every unsettled event nobody holds (left by a previous run, or a process
        that died); returns how many. The HTTP client opens on the first attempt (`_http`)."""
        return await self.take()

    def _http(self) -> httpx.AsyncClient:
        """The HTTP client, opened on the first attempt: importing httpx and building the
        guard's SSL context cost ~85 ms, which a server start pays only once it has a webhook
        to send (bench/cold_start.py)."""
        if self._client is None:
            import httpx  # lazy: see the docstring

            from foretell.webhooks.transport import GuardedTransport

            self._client = httpx.AsyncClient(
                transport=self._transport
                or GuardedTransport(
                    allow_private=self._allow_private, max_connections=self._limits.concurrency
                ),
                follow_redirects=False,
                timeout=self._policy.timeout_s,
                headers={"user-agent": USER_AGENT, "content-type": "application/json"},
            )
        return self._client

    async def take(self) -> int:
        """Take over the unsettled events nobody holds (their process stopped or died) and
        deliver them; how many."""
        taken = 0
        while not self._closed:
            batch = await self._outbox.take(TAKE_BATCH)
            self.enqueue([e for e in batch if e.id not in self._live])
            taken += len(batch)
            if len(batch) < TAKE_BATCH:
                break
        if taken:
            log.info("resuming delivery of %d webhook events", taken)
        return taken

    async def renew(self) -> int:
        """Renew this process's claims on the events it is delivering; how many it held."""
        return await self._outbox.renew(list(self._live))

    def expect(self, events: Iterable[OutboxEvent]) -> None:
        """`events` are being committed: `enqueue` them once they are, `forget` them if not."""
        for event in events:
            self._live[event.id] = event

    def forget(self, events: Iterable[OutboxEvent]) -> None:
        for event in events:
            self._live.pop(event.id, None)

    def live(self, event_id: str) -> OutboxEvent | None:
        """The event, if it is being committed, waiting to be sent, or being sent."""
        return self._live.get(event_id)

    def enqueue(self, events: Iterable[OutboxEvent]) -> None:
        """Deliver `events` (already committed), after any earlier event of the same prediction."""
        if self._closed:
            return  # stored unsettled: the next start sends them
        for event in events:
            self._live[event.id] = event
            metrics.WEBHOOK_BACKLOG.inc()
            lane = self._lanes.get(event.prediction_id)
            if lane is not None:
                _in_order(lane, event)
                continue
            self._lanes[event.prediction_id] = deque([event])
            task = asyncio.create_task(self._drain(event.prediction_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop sending. Unsettled events stay stored as they are, handed back for another
        process (or the next start) to send."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        try:
            await self._outbox.release()
        except Exception as exc:  # their claims expire in their time instead
            log.warning("could not hand back the undelivered webhook events: %r", exc)

    async def _drain(self, prediction_id: str) -> None:
        lane = self._lanes[prediction_id]
        try:
            while lane:
                if not await self._first_in_line(lane):
                    await asyncio.sleep(BLOCKED_RETRY_S)
                    continue
                try:
                    await self._deliver(lane[0])
                except ClaimLost:
                    log.warning("webhook event %s was taken over by another process", lane[0].id)
                self._live.pop(lane.popleft().id, None)
                metrics.WEBHOOK_BACKLOG.dec()
        finally:
            # Whatever is left at a stop stays stored, unsettled, for the next start.
            metrics.WEBHOOK_BACKLOG.dec(len(lane))
            del self._lanes[prediction_id]

    async def _first_in_line(self, lane: deque[OutboxEvent]) -> bool:
        """Whether the lane's first event may go out now: the earlier unsettled events of its
        prediction that nobody held are put before it (taken over), and while another process
        holds one, it may not."""
        try:
            ahead = await self._outbox.ahead(lane[0])
        except Exception as exc:  # the store is away: look again shortly
            log.warning("could not check the webhook events before %s: %r", lane[0].id, exc)
            return False
        for event in reversed(ahead.taken):
            if event.id not in self._live:
                self._live[event.id] = event
                metrics.WEBHOOK_BACKLOG.inc()
                lane.appendleft(event)
        return not ahead.blocked  # (the new first, if any, has nothing before it but ours)

    async def _deliver(self, event: OutboxEvent) -> None:
        while not event.status.settled:
            if event.next_attempt_at is not None:
                wait_s = (event.next_attempt_at - self._now()).total_seconds()
                if wait_s > 0:
                    await self._sleep(wait_s)
            # The receiver's slot first: events waiting for a busy receiver must not hold the
            # slots that other receivers' events need.
            async with self._host(_receiver(event.url)), self._slots:
                at, started = self._now(), time.monotonic()
                try:
                    answer = await self._attempt(event, at)
                except Exception as exc:  # a bug costs an attempt, never the lane
                    log.exception("webhook attempt of %s failed inside foretell", event.id)
                    answer = _Answer(None, f"foretell failed to send it: {exc!r}")
                latency_s = time.monotonic() - started
            self._settle(event, answer, at)
            metrics.WEBHOOK_ATTEMPTS.labels(event.status.value).inc()
            attempt = DeliveryAttempt(
                id=uuid.uuid4().hex,
                event_id=event.id,
                prediction_id=event.prediction_id,
                event=event.event,
                number=event.attempts,
                at=at,
                latency_s=latency_s,
                status_code=answer.status_code,
                error=answer.error,
                outcome=event.status,
            )
            try:
                await self._outbox.record(event, attempt)
            except ClaimLost:
                raise  # another process delivers it now
            except Exception:
                # Sending goes on; a delivery the store missed is only sent again after a
                # restart, under the same webhook-id.
                log.exception("could not record webhook attempt %d of %s", event.attempts, event.id)

    def _settle(self, event: OutboxEvent, answer: _Answer, at: datetime) -> None:
        event.attempts += 1
        event.last_attempt_at = at
        code = answer.status_code
        if code is not None and 200 <= code < 300:
            event.status, event.next_attempt_at = DeliveryStatus.DELIVERED, None
            return
        event.status, event.next_attempt_at = self._policy.after_failure(
            since=event.queued_at or event.created_at,
            retryable=not answer.final and retryable(code),
            retry_after_s=answer.retry_after_s,
            now=self._now(),
            rng=self._rng,
        )

    async def _attempt(self, event: OutboxEvent, at: datetime) -> _Answer:
        import httpx  # lazy (loaded by _http already): its errors are caught below

        from foretell.webhooks.transport import RefusedAddress

        client = self._http()
        headers = self._keys.sign(event.id, event.body, at)
        if event.request_id is not None:  # the receiver's logs can name the request behind it
            headers["x-request-id"] = event.request_id
        timeout_s = self._policy.timeout_s
        try:
            # httpx's timeouts are per read; this one bounds a receiver that trickles bytes,
            # and a slow name lookup.
            async with (
                asyncio.timeout(timeout_s),
                client.stream(
                    "POST", event.url, content=event.body.encode(), headers=headers
                ) as response,
            ):
                await _read_some(response.aiter_raw(), self._limits.response_bytes)
        except RefusedAddress as refused:
            return _Answer(None, str(refused), final=True)
        except (TimeoutError, httpx.TimeoutException):
            return _Answer(None, f"no answer within {timeout_s:g} s (timeout)")
        except httpx.HTTPError as exc:
            return _Answer(None, _describe(exc))
        code = response.status_code
        if 300 <= code < 400:
            where = response.headers.get("location", "nowhere")
            return _Answer(code, f"redirect to {where}: webhooks do not follow redirects")
        now = self._now()
        return _Answer(code, None, retry_after_s(response.headers.get("retry-after"), now))

    @contextlib.asynccontextmanager
    async def _host(self, host: str) -> AsyncIterator[None]:
        slots = self._hosts.get(host)
        if slots is None:
            slots = self._hosts[host] = _HostSlots(self._limits.per_host)
        slots.users += 1
        try:
            async with slots.semaphore:
                yield
        finally:
            slots.users -= 1
            if slots.users == 0:
                del self._hosts[host]  # no table of every host ever seen


class _HostSlots:
    def __init__(self, size: int) -> None:
        self.semaphore = asyncio.Semaphore(size)
        self.users = 0


async def _read_some(chunks: AsyncIterator[bytes], limit: int) -> None:
    """Read at most about `limit` bytes of an answer: enough to keep the connection reusable
    for a short body, never a receiver's whole stream."""
    read = 0
    async for chunk in chunks:
        read += len(chunk)
        if read >= limit:
            return


def _in_order(lane: deque[OutboxEvent], event: OutboxEvent) -> None:
    """Put `event` in its place among the lane's events (its prediction's order), never before
    the first, which may be on its way."""
    key = (event.seq, event.created_at)
    position = len(lane)
    while position > 1 and (lane[position - 1].seq, lane[position - 1].created_at) > key:
        position -= 1
    lane.insert(position, event)


def _receiver(url: str) -> str:
    """What the per-host limit counts by: host and port, as two servers on one machine are two
    receivers."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _describe(exc: httpx.HTTPError) -> str:
    import httpx  # lazy (loaded by the attempt that failed)

    reason = str(exc) or repr(exc.__cause__ or exc)
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {reason}"
    return f"{type(exc).__name__}: {reason}"
