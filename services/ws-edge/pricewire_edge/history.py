"""Recent messages of each data group, in memory, for snapshots and resume. Pure.

The edge feeds every message it receives from a group's JetStream stream into that group's
:class:`GroupHistory`: a bounded ring in ``seq`` order plus the latest frame per key (per symbol
for prices, one for the market). A subscriber's snapshot comes from ``latest`` (prices, market)
or the tail of the ring (news, alerts); a resume replays the ring after the client's ``seq``
when the ring reaches back that far, and otherwise the edge reads JetStream itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from pricewire_contracts import Group

__all__ = ["GroupHistory", "Stored"]


@dataclass(frozen=True, slots=True)
class Stored:
    seq: int
    symbol: str | None
    frame: bytes


class GroupHistory:
    def __init__(self, group: Group, *, maxlen: int, tail: int = 20) -> None:
        self.group = group
        self.ring: deque[Stored] = deque(maxlen=maxlen)
        self.latest: dict[str | None, Stored] = {}
        self.tail = tail
        #: Every message after this seq was seen. The first messages an edge loads are only the
        #: last value per subject (a snapshot, with gaps); the ring is complete from here on.
        self.complete_after = 0
        #: the whole group's snapshot, kept until the next message (a connect storm asks it
        #: thousands of times between two messages)
        self._snapshot: list[Stored] | None = None

    @property
    def last_seq(self) -> int:
        return self.ring[-1].seq if self.ring else 0

    @property
    def first_seq(self) -> int:
        return self.ring[0].seq if self.ring else 0

    def add(self, item: Stored) -> bool:
        """Keep ``item``; False (and nothing kept) if its seq is not newer than the last one."""
        if self.ring and item.seq <= self.ring[-1].seq:
            return False
        self.ring.append(item)
        self.latest[item.symbol] = item
        self._snapshot = None
        return True

    def covers(self, after_seq: int) -> bool:
        """True if every message with seq > ``after_seq`` is here (so replay needs no JetStream)."""
        if after_seq < self.complete_after:
            return False
        return not self.ring or self.ring[0].seq <= after_seq + 1

    def after(self, after_seq: int, symbols: frozenset[str] | None = None) -> list[Stored]:
        """Messages with seq > ``after_seq`` in order, narrowed to ``symbols`` if given."""
        out: list[Stored] = []
        for item in reversed(self.ring):
            if item.seq <= after_seq:
                break
            if _matches(item, symbols):
                out.append(item)
        out.reverse()
        return out

    def snapshot(self, symbols: frozenset[str] | None = None) -> list[Stored]:
        """The current state of the group: latest per symbol (prices, market) or the tail."""
        if symbols is None:
            if self._snapshot is None:
                self._snapshot = self._build_snapshot(None)
            return list(self._snapshot)
        return self._build_snapshot(symbols)

    def _build_snapshot(self, symbols: frozenset[str] | None) -> list[Stored]:
        if self.group in (Group.NEWS, Group.ALERTS):
            items: Iterable[Stored] = list(self.ring)[-self.tail :] if self.tail else []
        else:
            items = self.latest.values()
        return sorted((i for i in items if _matches(i, symbols)), key=lambda i: i.seq)


def _matches(item: Stored, symbols: frozenset[str] | None) -> bool:
    return symbols is None or item.symbol is None or item.symbol in symbols
