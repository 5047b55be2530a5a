"""A circuit breaker per provider: closed -> open after repeated failures -> half-open (one
probe) -> closed on success, or open again for longer on failure."""

from __future__ import annotations

import random

from pricewire_contracts import BreakerState

from .limits import full_jitter

__all__ = ["BreakerState", "CircuitBreaker"]


class CircuitBreaker:
    """
    >>> b = CircuitBreaker(failure_threshold=2, open_base_s=10, open_max_s=100, rng=random.Random(1))
    >>> b.record_failure(0.0); b.state
    'closed'
    >>> b.record_failure(1.0); b.state
    'open'
    >>> b.allow(2.0)
    False
    >>> b.allow(b.open_until)  # the probe
    True
    >>> b.state
    'half_open'
    >>> b.record_success(); b.state
    'closed'
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        open_base_s: float = 30.0,
        open_max_s: float = 600.0,
        rng: random.Random,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_base_s = open_base_s
        self.open_max_s = open_max_s
        self.rng = rng
        self.state: BreakerState = "closed"
        self.consecutive_failures = 0
        self.opened = 0  #: openings since the last success (drives the backoff)
        self.open_until = 0.0

    def allow(self, now: float) -> bool:
        """May a poll run now? An open breaker past its time lets exactly one probe through."""
        if self.state == "closed":
            return True
        if self.state == "open" and now >= self.open_until:
            self.state = "half_open"
            return True
        return False

    def record_success(self) -> None:
        self.state = "closed"
        self.consecutive_failures = 0
        self.opened = 0

    def record_failure(self, now: float) -> None:
        self.consecutive_failures += 1
        if self.state == "half_open" or (
            self.state == "closed" and self.consecutive_failures >= self.failure_threshold
        ):
            self._open(now)

    def record_rate_limited(self) -> None:
        """A 429 proves the provider is up: a half-open probe that got one closes the breaker,
        and it does not count as a failure (the scheduler honours Retry-After instead)."""
        if self.state == "half_open":
            self.state = "closed"
            self.opened = 0
        self.consecutive_failures = 0

    def _open(self, now: float) -> None:
        # at least the base, then exponentially longer (full jitter) with each reopening
        extra = full_jitter(
            self.opened, base_s=self.open_base_s, cap_s=self.open_max_s, rng=self.rng
        )
        self.open_until = now + min(self.open_max_s, self.open_base_s + extra)
        self.opened += 1
        self.state = "open"
