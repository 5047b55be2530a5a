"""One token bucket for every rate in Pricewire: a client's messages at the edge, a provider's
documented request limit in market-ingest. Pure: callers pass ``now`` (``time.monotonic()``),
nothing here reads a clock.

``rate`` tokens come back per second, at most ``burst`` are saved up, and the bucket starts
full. Three ways to use it:

=================================  ==========================================================
:meth:`~TokenBucket.take`          spend if the tokens are there, else refuse (edge messages)
:meth:`~TokenBucket.wait_s`        how long until they are, spending nothing (a poll scheduler
                                   that comes back later)
:meth:`~TokenBucket.reserve`       spend now, into debt if need be, and say how long to wait
                                   before acting (pacing concurrent connects or sends)
=================================  ==========================================================

>>> bucket = TokenBucket(rate=2, burst=3, now=0.0)
>>> [bucket.take(0.0) for _ in range(4)]
[True, True, True, False]
>>> bucket.wait_s(0.0)  # seconds until the next token
0.5
>>> bucket.take(0.5)  # one token came back
True
>>> bucket.available(10.0)  # a long pause refills to the burst, not beyond
3.0

Pacing with no burst: each reservation waits one more ``1 / rate`` behind the last.

>>> pacer = TokenBucket(rate=4, burst=1, now=0.0)
>>> [pacer.reserve(0.0) for _ in range(3)]
[0.0, 0.25, 0.5]

Over any span of ``t`` seconds it never grants more than ``burst + rate * t`` tokens.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]

# Absorbs float error, so that a caller spending at exactly the rate is never refused.
_EPSILON = 1e-9


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full at ``now``."""

    __slots__ = ("_last", "burst", "rate", "tokens")

    def __init__(self, *, rate: float, burst: float, now: float = 0.0) -> None:
        if not rate > 0 or not burst >= 1:  # also refuses NaN
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = self.burst
        self._last = now

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst}, tokens={self.tokens:.3f})"

    def _refill(self, now: float) -> None:
        if now > self._last:  # a clock going backwards refills nothing
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
            self._last = now

    def available(self, now: float) -> float:
        """The tokens saved up at ``now`` (negative while reservations are owed)."""
        self._refill(now)
        return self.tokens

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if they are there; ``False`` (nothing spent) if not."""
        self._refill(now)
        if self.tokens + _EPSILON >= cost:
            self.tokens = max(0.0, self.tokens - cost)
            return True
        return False

    def wait_s(self, now: float, cost: float = 1.0) -> float:
        """Seconds from ``now`` until ``cost`` tokens are there (0.0: they are); spends nothing.

        A ``cost`` above the burst never fits: the answer is then infinite.
        """
        self._refill(now)
        missing = cost - self.tokens
        if missing <= _EPSILON:
            return 0.0
        if cost > self.burst + _EPSILON:
            return float("inf")
        return missing / self.rate

    def reserve(self, now: float, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens now, into debt if they are not there, and return the seconds
        to wait before acting on them. Later callers queue behind earlier ones, so concurrent
        callers are spread at the rate rather than woken together."""
        self._refill(now)
        if self.tokens + _EPSILON >= cost:
            self.tokens = max(0.0, self.tokens - cost)
            return 0.0
        wait = (cost - self.tokens) / self.rate
        self.tokens -= cost
        return wait
