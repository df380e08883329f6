"""When to try a delivery again: pure functions of the answer, the attempt count and the clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from foretell.domain import DeliveryStatus


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring Retry-After, for `window_s` after the event
    was queued for delivery."""

    timeout_s: float = 10.0  # one attempt, response included
    window_s: float = 3600.0  # after this long since the event, a failure is final
    first_delay_s: float = 1.0
    max_delay_s: float = 600.0

    def delay_s(self, attempts: int, retry_after_s: float | None, rng: random.Random) -> float:
        """How long to wait after the `attempts`-th failure: the base doubles each time (up to
        `max_delay_s`) and is then jittered into [base/2, base], so receivers that come back
        are not hit by every sender at once. A longer Retry-After wins."""
        base = min(self.max_delay_s, self.first_delay_s * 2.0 ** (attempts - 1))
        delay = base / 2 + rng.uniform(0, base / 2)
        return max(delay, retry_after_s or 0.0)

    def after_failure(
        self,
        *,
        since: datetime,
        attempts: int,
        retryable: bool,
        retry_after_s: float | None,
        now: datetime,
        rng: random.Random,
    ) -> tuple[DeliveryStatus, datetime | None]:
        """The event's status after a failed attempt, and when to try next (None: never)."""
        if not retryable:
            return DeliveryStatus.DEAD, None
        at = now + timedelta(seconds=self.delay_s(attempts, retry_after_s, rng))
        if at > since + timedelta(seconds=self.window_s):
            return DeliveryStatus.DEAD, None
        return DeliveryStatus.FAILING, at


def retryable(status_code: int | None) -> bool:
    """No answer (connection error, timeout), 408, 429 and 5xx may pass; other codes will not."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delay-seconds or an HTTP-date) in seconds from `now`."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
