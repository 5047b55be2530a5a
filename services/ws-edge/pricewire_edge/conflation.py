"""What a connection holds back: ``max_rate_hz`` throttling, and conflation of a slow client.

Both are mixed into :class:`~pricewire_edge.connection.Connection` (its slots hold the state):

- **Throttling.** A subscription's ``max_rate_hz`` gives the connection a minimum interval per
  stream (:attr:`throttle`); a frame with a key of that stream arriving sooner is held, the
  newest one wins, and it goes out when the interval is up.
- **Conflation.** A client whose socket stops draining (``pause_writing``) keeps the latest
  frame per key (a symbol's price, the market snapshot, the stats) plus a bounded backlog of
  frames that cannot be replaced (news, alerts, broadcasts). Replies and errors never wait
  here: :meth:`Connection.send_now` writes them at once.
  When its socket drains it first gets a ``conflated`` notice, then those frames.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from pricewire_common.encoding import dumps
from pricewire_contracts import Conflated

from .frame_keys import FrameKey, Stream
from .metrics import CONFLATED_MESSAGES

__all__ = ["Conflation"]


class Conflation:
    """Throttling and conflation for :class:`~pricewire_edge.connection.Connection`."""

    # set in Connection.__init__
    __slots__ = (
        "backlog",
        "dropped",
        "held",
        "last_sent",
        "latest",
        "replaced",
        "throttle",
    )
    throttle: dict[Stream, float]  # client-chosen max_rate_hz: stream -> min seconds apart
    last_sent: dict[FrameKey, float]
    held: dict[FrameKey, tuple[int, bytes]]  # throttled: the newest frame per key, held
    latest: dict[FrameKey, tuple[int, bytes]]  # conflated: the newest frame per key
    backlog: deque[bytes]  # bounded (maxlen): the oldest is dropped, and counted
    replaced: int
    dropped: int

    # Connection's own, used here
    transport: asyncio.Transport | None
    closing: bool

    if TYPE_CHECKING:

        def send(self, frame: bytes, key: FrameKey | None = None, seq: int = 0) -> None: ...

        def send_now(self, payload: bytes) -> None: ...

    def _throttled(self, frame: bytes, key: FrameKey, seq: int) -> bool:
        """Hold ``frame`` if this key was sent less than 1/max_rate_hz ago (newest one wins)."""
        interval = self.throttle.get(key.stream)
        if interval is None:
            return False
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = self.last_sent.get(key, 0.0) + interval
        if now >= due and key not in self.held:
            self.last_sent[key] = now
            return False
        if key not in self.held:
            loop.call_at(due, self._release, key)
        self.held[key] = (seq, frame)
        return True

    def _release(self, key: FrameKey) -> None:
        held = self.held.pop(key, None)
        if held is not None and self.transport is not None and not self.closing:
            self.last_sent[key] = asyncio.get_running_loop().time()
            self.send(held[1], None, held[0])

    def _conflate(self, frame: bytes, key: FrameKey | None, seq: int) -> None:
        if key is None:
            if len(self.backlog) == self.backlog.maxlen:
                self.dropped += 1
            self.backlog.append(frame)
            return
        if key in self.latest:
            self.replaced += 1
            CONFLATED_MESSAGES.inc()
        self.latest[key] = (seq, frame)

    def _drain_conflated(self) -> None:
        notice = Conflated(replaced=self.replaced, dropped=self.dropped)
        self.send_now(dumps(notice))
        for frame in self.backlog:
            self.send(frame)
        for _, frame in sorted(self.latest.values(), key=lambda item: item[0]):
            self.send(frame)
        self._discard_held()
        self.replaced = self.dropped = 0

    def _discard_held(self) -> None:
        self.backlog.clear()
        self.latest.clear()
