"""When to try a delivery again: pure functions of the answer, the time spent and the clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from foretell.domain import DeliveryStatus


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff with jitter, honouring Retry-After, for `window_s` after the event was queued
    for delivery (at its creation, or at a redelivery)."""

    timeout_s: float = 10.0  # one attempt, the answer included
    window_s: float = 3600.0  # after this long since it was queued, a failure is final
    first_delay_s: float = 1.0
    max_delay_s: float = 600.0

    def delay_s(self, elapsed_s: float, retry_after_s: float | None, rng: random.Random) -> float:
        """How long to wait after a failure `elapsed_s` into the delivery: about as long again
        (so the waits double: 1, 2, 4 … s), between `first_delay_s` and `max_delay_s`, jittered
        into [base/2, base] so that receivers coming back are not hit by every sender at once.
        A longer Retry-After wins."""
        base = min(self.max_delay_s, max(self.first_delay_s, elapsed_s))
        delay = base / 2 + rng.uniform(0, base / 2)
        return max(delay, retry_after_s or 0.0)

    def after_failure(
        self,
        *,
        since: datetime,
        retryable: bool,
        retry_after_s: float | None,
        now: datetime,
        rng: random.Random,
    ) -> tuple[DeliveryStatus, datetime | None]:
        """The event's status after a failed attempt, and when to try next (None: never)."""
        if not retryable:
            return DeliveryStatus.DEAD, None
        elapsed_s = max((now - since).total_seconds(), 0.0)
        delay_s = self.delay_s(elapsed_s, retry_after_s, rng)
        if elapsed_s + delay_s > self.window_s:
            return DeliveryStatus.DEAD, None
        return DeliveryStatus.FAILING, now + timedelta(seconds=delay_s)


def retryable(status_code: int | None) -> bool:
    """No answer (connection error, timeout), 408, 429 and 5xx may pass; other codes will not."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delay-seconds or an HTTP-date) in seconds from `now`; None if it
    is missing or malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
