"""Sequence checks and reconnect delays: pure helpers of the connection manager."""

from __future__ import annotations

import random
from typing import Literal

from .protocol import SequenceMode

__all__ = ["SequenceCheck", "SequenceTracker", "full_jitter"]

#: ``ok``: in order; ``first``: no earlier number to compare with; ``gap``: numbers were
#: skipped (contiguous venues), the message is taken and becomes the new reference;
#: ``stale``: not newer than the last one taken (dropped)
SequenceCheck = Literal["ok", "first", "gap", "stale"]


class SequenceTracker:
    """The last sequence number taken per key (a pair), for one connection.

    >>> t = SequenceTracker("contiguous")
    >>> [t.check("BTC", n) for n in (5, 6, 9, 10, 10, 3)]
    ['first', 'ok', 'gap', 'ok', 'stale', 'stale']
    >>> m = SequenceTracker("monotonic")
    >>> [m.check("BTC", n) for n in (5, 9, 7, 12)]
    ['first', 'ok', 'stale', 'ok']
    """

    def __init__(self, mode: SequenceMode) -> None:
        self.mode = mode
        self.last: dict[str, int] = {}

    def check(self, key: str, sequence: int | None) -> SequenceCheck:
        if self.mode == "none" or sequence is None:
            return "ok"
        last = self.last.get(key)
        if last is None:
            self.last[key] = sequence
            return "first"
        if sequence <= last:
            return "stale"
        self.last[key] = sequence
        if self.mode == "contiguous" and sequence != last + 1:
            return "gap"
        return "ok"

    def reset(self) -> None:
        """A new connection: numbers start afresh (the next message resynchronises)."""
        self.last.clear()


def full_jitter(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The delay before reconnect number ``attempt`` (1, 2, ...): uniform in
    [0, min(cap, base * 2^(attempt - 1))] ("full jitter": reconnecting clients spread out).

    >>> rng = random.Random(1)
    >>> all(0 <= full_jitter(n, base_s=0.5, cap_s=30, rng=rng) <= min(30, 0.5 * 2 ** (n - 1))
    ...     for n in range(1, 20))
    True
    """
    ceiling = min(cap_s, base_s * 2 ** min(max(attempt - 1, 0), 30))
    return rng.uniform(0.0, ceiling)
