"""Message rate per connection: a token bucket, then a close on persistent abuse. Pure.

============================  ===============================================================
:class:`TokenBucket`          a rate with a burst; ``take(now)`` says whether one more fits
:class:`MessageRateLimiter`   per connection: allow, warn (error ``rate_limited``), close 4008
:func:`subscription_weight`   what one subscription counts against ``max_subscriptions``
============================  ===============================================================

Callers pass ``now`` (``time.monotonic()``); nothing here reads a clock. The settings are in
:class:`~pricewire_edge.limits.LimitsSettings`, which also re-exports these names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["MessageRateLimiter", "RateDecision", "TokenBucket", "subscription_weight"]


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full.

    >>> bucket = TokenBucket(rate=2, burst=3, now=0.0)
    >>> [bucket.take(0.0) for _ in range(4)]
    [True, True, True, False]
    >>> bucket.take(0.5)  # one token came back
    True

    Over any span of ``t`` seconds it never grants more than ``burst + rate * t``.
    """

    rate: float
    burst: float
    now: float = 0.0
    tokens: float = field(init=False)
    _last: float = field(init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.tokens = float(self.burst)
        self._last = self.now

    def take(self, now: float, cost: float = 1.0) -> bool:
        if now > self._last:  # a clock going backwards refills nothing
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
            self._last = now
        # The epsilon absorbs float error, so a client sending at exactly the rate is never refused.
        if self.tokens + 1e-9 >= cost:
            self.tokens = max(0.0, self.tokens - cost)
            return True
        return False


class RateDecision(StrEnum):
    ALLOW = "allow"  #: handle the message
    WARN = "warn"  #: drop it and reply ``error`` with code ``rate_limited``
    CLOSE = "close"  #: close the connection with :attr:`CloseCode.RATE_LIMITED` (4008)


class MessageRateLimiter:
    """Per connection: a token bucket, then a close on persistent abuse.

    Every message over the rate is a violation: it is dropped and the client warned; the
    ``max_violations``-th violation within ``window_s`` closes the connection. A flooding
    client therefore gets at most ``max_violations - 1`` error replies, never one per message
    it sends.
    """

    __slots__ = ("_violations", "bucket", "max_violations", "window_s")

    def __init__(
        self, *, rate: float, burst: int, max_violations: int, window_s: float, now: float
    ) -> None:
        if max_violations < 1 or window_s <= 0:
            raise ValueError("max_violations >= 1 and window_s > 0 are required")
        self.bucket = TokenBucket(rate=rate, burst=burst, now=now)
        self.max_violations = max_violations
        self.window_s = window_s
        self._violations: deque[float] = deque()

    def check(self, now: float) -> RateDecision:
        if self.bucket.take(now):
            return RateDecision.ALLOW
        violations = self._violations
        while violations and violations[0] <= now - self.window_s:
            violations.popleft()
        violations.append(now)
        if len(violations) >= self.max_violations:
            return RateDecision.CLOSE
        return RateDecision.WARN


def subscription_weight(symbols: Collection[str] | None) -> int:
    """What one group subscription counts against ``max_subscriptions``: 1, or one per symbol."""
    return len(symbols) if symbols else 1
