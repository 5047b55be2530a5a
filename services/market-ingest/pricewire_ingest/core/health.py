"""Provider health: the success rate over a sliding window, and the status a poll outcome means."""

from __future__ import annotations

from collections import deque

from pricewire_contracts import PollOutcome, ProviderState

__all__ = ["HealthWindow", "status_for"]


def status_for(outcome: PollOutcome) -> ProviderState:
    """A 429 is ``rate_limited`` (up, but asking us to slow down), never ``offline``.

    >>> status_for("ok"), status_for("rate_limited"), status_for("timeout")
    ('online', 'rate_limited', 'offline')
    """
    if outcome == "ok":
        return "online"
    if outcome == "rate_limited":
        return "rate_limited"
    if outcome == "disabled":
        return "disabled"
    return "offline"


class HealthWindow:
    """Poll results of the last ``window_s`` seconds (at most ``max_samples``).

    >>> w = HealthWindow(window_s=60)
    >>> for t, ok in ((0, True), (10, False), (20, True), (30, True)):
    ...     w.record(t, ok)
    >>> w.success_rate(30), w.polls(30)
    (75.0, 4)
    >>> w.success_rate(75), w.polls(75)
    (100.0, 2)
    """

    def __init__(self, *, window_s: float, max_samples: int = 2000) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, bool]] = deque(maxlen=max_samples)

    def record(self, now: float, ok: bool) -> None:
        self._samples.append((now, ok))

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def polls(self, now: float) -> int:
        self._trim(now)
        return len(self._samples)

    def success_rate(self, now: float) -> float:
        """Percent of successful polls in the window; 0 with no poll in it."""
        self._trim(now)
        if not self._samples:
            return 0.0
        return round(100.0 * sum(ok for _, ok in self._samples) / len(self._samples), 2)
