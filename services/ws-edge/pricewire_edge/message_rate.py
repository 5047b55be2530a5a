"""Message rate per connection: a token bucket, then a close on persistent abuse. Pure.

============================  ===============================================================
:class:`TokenBucket`          a rate with a burst (:mod:`pricewire_common.ratelimit`, shared)
:class:`MessageRateLimiter`   per connection: allow, warn (error ``rate_limited``), close 4008
:func:`subscription_weight`   what one subscription counts against ``max_subscriptions``
============================  ===============================================================

Callers pass ``now`` (``time.monotonic()``); nothing here reads a clock. The settings are in
:class:`~pricewire_edge.limits.LimitsSettings`, which also re-exports these names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from enum import StrEnum

from pricewire_common.ratelimit import TokenBucket

__all__ = ["MessageRateLimiter", "RateDecision", "TokenBucket", "subscription_weight"]


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
        #: made at the first violation: an empty deque is 760 bytes, and most clients never
        #: go over the rate
        self._violations: deque[float] | None = None

    def check(self, now: float) -> RateDecision:
        if self.bucket.take(now):
            return RateDecision.ALLOW
        violations = self._violations
        if violations is None:
            violations = self._violations = deque()
        while violations and violations[0] <= now - self.window_s:
            violations.popleft()
        violations.append(now)
        if len(violations) >= self.max_violations:
            return RateDecision.CLOSE
        return RateDecision.WARN


def subscription_weight(symbols: Collection[str] | None) -> int:
    """What one group subscription counts against ``max_subscriptions``: 1, or one per symbol."""
    return len(symbols) if symbols else 1
