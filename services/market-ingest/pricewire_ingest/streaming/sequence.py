"""Sequence checks: a pure helper of the connection manager."""

from __future__ import annotations

from typing import Literal

from .protocol import SequenceMode

__all__ = ["SequenceCheck", "SequenceTracker"]

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
