"""Token bucket (a provider's documented rate limit) and exponential backoff with full jitter."""

from __future__ import annotations

import random

__all__ = ["TokenBucket", "full_jitter"]


class TokenBucket:
    """``rate_per_s`` tokens per second, at most ``capacity`` saved up.

    >>> bucket = TokenBucket(rate_per_s=1.0, capacity=2, now=0.0)
    >>> bucket.take(0.0), bucket.take(0.0), bucket.take(0.0)
    (0.0, 0.0, 1.0)
    >>> bucket.take(1.0)
    0.0
    """

    def __init__(self, *, rate_per_s: float, capacity: float, now: float) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ValueError("a bucket needs a positive rate and room for one token")
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self._tokens = capacity
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(
                self.capacity, self._tokens + (now - self._updated) * self.rate_per_s
            )
            self._updated = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def take(self, now: float) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available (nothing
        is taken then)."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate_per_s


def full_jitter(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """AWS "full jitter": uniform in [0, min(cap, base * 2**attempt)].

    Spreads retries of many clients evenly instead of in synchronized waves.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 32))
    return rng.uniform(0.0, ceiling)
