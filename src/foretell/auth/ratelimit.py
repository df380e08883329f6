"""Token buckets: a sustained rate with room for bursts, as a pure function of the clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate_per_s: float
    burst: int
    tokens: float
    updated: float  # the clock reading `tokens` was counted at

    @classmethod
    def full(cls, rate_per_s: float, burst: int, now: float) -> TokenBucket:
        return cls(rate_per_s, burst, float(burst), now)

    def take(self, now: float) -> float:
        """Spend a token: 0.0 if there was one, else how many seconds until there is."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s
