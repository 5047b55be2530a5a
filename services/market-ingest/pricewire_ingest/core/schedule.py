"""When each provider is polled next: a min-heap of due times, and the rule that sets them."""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass

from ..errors import PollOutcome
from .limits import full_jitter

__all__ = ["PollTiming", "Scheduler", "next_poll_at"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PollTiming:
    """
    >>> PollTiming(jitter_ratio=0.1, retry_base_s=2.0, min_interval_s=0.5)
    PollTiming(jitter_ratio=0.1, retry_base_s=2.0, min_interval_s=0.5)
    """

    jitter_ratio: float = 0.1  #: each interval is stretched or shrunk by up to this share
    retry_base_s: float = 2.0  #: first retry after a failure waits up to this (doubling)
    min_interval_s: float = 0.5


def next_poll_at(
    now: float,
    interval_s: float,
    outcome: PollOutcome,
    *,
    timing: PollTiming,
    rng: random.Random,
    failures: int = 0,
    rate_limited_streak: int = 0,
    retry_after_s: float | None = None,
    breaker_open_until: float | None = None,
) -> float:
    """The next poll time after a poll that ended with ``outcome``.

    - ok: one interval later, with jitter (providers drift apart instead of polling in step);
    - rate_limited: never before Retry-After, and never faster than the interval; without a
      Retry-After, exponential backoff with full jitter on top of the interval;
    - a failure with the breaker open: when the breaker lets a probe through;
    - other failures: a quicker retry (full jitter, doubling), at most one interval away.
    """
    jittered = interval_s * rng.uniform(1 - timing.jitter_ratio, 1 + timing.jitter_ratio)
    if outcome == "ok":
        delay = jittered
    elif outcome == "rate_limited":
        if retry_after_s is not None:
            delay = max(retry_after_s, jittered)
        else:
            extra = full_jitter(
                rate_limited_streak, base_s=interval_s, cap_s=16 * interval_s, rng=rng
            )
            delay = jittered + extra
    elif breaker_open_until is not None and breaker_open_until > now:
        delay = breaker_open_until - now
    else:
        retry = full_jitter(
            max(failures - 1, 0), base_s=timing.retry_base_s, cap_s=interval_s, rng=rng
        )
        delay = min(jittered, retry)
    return now + max(delay, timing.min_interval_s)


class Scheduler:
    """Due times of providers; re-scheduling a provider replaces its previous time.

    >>> s = Scheduler()
    >>> s.schedule("a", 5.0); s.schedule("b", 1.0); s.schedule("a", 0.5)
    >>> s.pop_due(1.0)
    ['a', 'b']
    >>> s.next_due() is None
    True
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, provider_id: str, due: float) -> None:
        self._due[provider_id] = due
        heapq.heappush(self._heap, (due, next(self._counter), provider_id))

    def due_at(self, provider_id: str) -> float | None:
        return self._due.get(provider_id)

    def _drop_stale(self) -> None:
        while self._heap:
            due, _, pid = self._heap[0]
            if self._due.get(pid) == due:
                return
            heapq.heappop(self._heap)

    def next_due(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[str]:
        """Every provider due at ``now``, earliest first; they leave the schedule."""
        ready: list[str] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return ready
            _, _, pid = heapq.heappop(self._heap)
            del self._due[pid]
            ready.append(pid)
