"""Authenticator: the key of a request → who is calling, within its rate limit.

What the store says of a key is cached for at most half a second, so a revocation made
anywhere (this server's API, or `foretell keys revoke` against the same database) takes
effect within that; a revocation through this server takes effect at once."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from foretell.auth.keys import digest
from foretell.auth.ratelimit import TokenBucket
from foretell.domain.access import ApiKey, Principal
from foretell.errors import RateLimited, Unauthenticated
from foretell.store.keys import KeyStore

FRESH_S = 0.5  # how long a key's stored state is trusted without reading it again
TOUCH_EVERY_S = 60.0  # last_used_at is kept to the minute, not written on every request
MAX_CACHED = 10_000  # digests remembered; unknown keys count too, so the cache is bounded


@dataclass(slots=True)
class _Seen:
    key: ApiKey | None
    at: float


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Authenticator:
    """`clock` (seconds, monotonic) ages the cache and fills rate buckets; `wall` (UTC) is
    what a key's expiry is compared with. Both are injected so tests need not sleep."""

    def __init__(
        self,
        store: KeyStore,
        *,
        rate_per_s: float | None = None,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._rate_per_s = rate_per_s
        self._burst = burst
        self._clock = clock
        self._wall = wall
        self._seen: dict[str, _Seen] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._touched: dict[str, float] = {}

    async def principal(self, key: str) -> Principal:
        """Who `key` belongs to; Unauthenticated if it is unknown, revoked or expired, and
        RateLimited if it is over its rate."""
        wanted = digest(key)
        now = self._clock()
        seen = self._seen.get(wanted)
        if seen is None or now - seen.at > FRESH_S:
            if len(self._seen) >= MAX_CACHED:
                self._seen.clear()
            seen = self._seen[wanted] = _Seen(await self._store.by_digest(wanted), now)
        found = seen.key
        if found is None or not hmac.compare_digest(found.digest, wanted):
            raise Unauthenticated("invalid API key")
        wall = self._wall()
        if found.revoked_at is not None:
            raise Unauthenticated(f"API key {found.id} was revoked")
        if found.expires_at is not None and wall >= found.expires_at:
            expired = found.expires_at.isoformat(timespec="seconds")
            raise Unauthenticated(f"API key {found.id} expired at {expired}")
        self._limit(found, now)
        if now - self._touched.get(found.id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._touched[found.id] = now
            self._store.touch(found.id, wall)
        return Principal(found.owner, found.scope, found.id)

    def forget(self, key_id: str) -> None:
        """Drop what is cached of a key (it was just revoked): the next request reads it."""
        self._seen = {d: s for d, s in self._seen.items() if s.key is None or s.key.id != key_id}

    def _limit(self, key: ApiKey, now: float) -> None:
        rate = key.rate_per_s or self._rate_per_s
        if rate is None:
            return
        burst = key.burst or self._burst or max(1, round(rate))
        bucket = self._buckets.get(key.id)
        if bucket is None or bucket.rate_per_s != rate or bucket.burst != burst:
            bucket = self._buckets[key.id] = TokenBucket.full(rate, burst, now)
        wait_s = bucket.take(now)
        if wait_s > 0:
            raise RateLimited(key.id, rate, burst, wait_s)
