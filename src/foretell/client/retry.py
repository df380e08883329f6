"""When a refused call is sent again: 429 and 503 after the server's Retry-After (else a growing
backoff), with jitter, within a bound on tries and on total time; and the clock it runs on."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from foretell import errors
from foretell.client.errors import ApiError, Overloaded, Unavailable

RETRIED = (Overloaded, Unavailable)  # 429 and 503: the server says "later", not "no"


class Idempotence(Enum):
    """Whether a call may be sent again after a 429 or 503."""

    SAFE = "safe"  # reads, cancel, settings: twice is the same as once
    REFUSED_ONLY = "refused_only"  # a create: only an answer given before any record existed
    NEVER = "never"  # a body that cannot be sent twice (a push's stream)


@dataclass(frozen=True, slots=True)
class Retry:
    """`attempts` tries in all (1: never retry), never waiting past `total_s` since the first;
    a Retry-After over `max_delay_s` is given up on at once. Without Retry-After: `backoff_s`,
    doubling. Each delay gets up to `jitter` of itself added, so refused callers spread out."""

    attempts: int = 5
    total_s: float = 60.0
    max_delay_s: float = 30.0
    backoff_s: float = 0.5
    jitter: float = 0.2
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay(self, error: ApiError, attempt: int, elapsed_s: float) -> float | None:
        """Seconds to wait before try `attempt + 1` after `error` ended try `attempt` (counted
        from 1), `elapsed_s` after the first began; None: give up and raise it."""
        if not isinstance(error, RETRIED) or attempt >= self.attempts:
            return None
        base = error.retry_after
        if base is None:
            base = self.backoff_s * 2.0 ** (attempt - 1)
        if base > self.max_delay_s:
            return None
        wait = base * (1.0 + self.jitter * self.random())
        if elapsed_s + wait > self.total_s:
            return None
        return wait

    def after(
        self, error: ApiError, idempotence: Idempotence, attempt: int, elapsed_s: float
    ) -> float | None:
        """As delay(), for a call of this kind: None also where it may not be sent again."""
        if not resendable(idempotence, error):
            return None
        return self.delay(error, attempt, elapsed_s)


NO_RETRY = Retry(attempts=1)
# The one 503 a create may have half done: a store connection lost during its COMMIT (see
# foretell.errors.StoreUnavailable): the record may exist, and a second try would make another.
_STORE_DOWN = errors.StoreUnavailable.code


def resendable(idempotence: Idempotence, error: ApiError) -> bool:
    """Whether a call of this kind may be sent again after `error` (a 429 or 503). A create's
    429s (rate limit, owner's limit, full queue) and 503s (model not ready, server at its caps or
    stopping) come before its record exists (the native router's _NOT_CREATED, the service's
    admission before its insert), except a stop that kept the record (its body names its `id`)
    and a store that went away."""
    if idempotence is Idempotence.SAFE:
        return True
    if idempotence is Idempotence.NEVER:
        return False
    if isinstance(error.body, dict) and "id" in error.body:
        return False
    return error.code != _STORE_DOWN


class Clock:
    """Real time. Tests pass a subclass whose sleeps only move its own time forward."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
