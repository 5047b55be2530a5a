"""The write side of the fan-out: every connection with frames queued is written once per turn.

A connection that gets a frame appends it to its ``pending`` list and, the first time in this
event-loop turn, marks itself here; at the end of the turn :meth:`Flusher.flush` has each marked
connection write its list with one ``writelines``. Load raises the batch size, not the number of
syscalls, and nothing is awaited per client. A data group's shared batch (a
:class:`~pricewire_edge.channels.Channel`) marks itself too, and is written first: a member
that also has frames of its own gets the channel's frames appended after them.

Pacing of the shared batches. Writing a group's batch to every member costs about one syscall
per member, whatever the batch holds (a 221-byte frame costs nearly what ten of them do). When
messages come faster than those writes take, writing every turn spends the edge's core on
syscalls that each carry one frame, and the clients' too, on as many reads. So the next write
of the shared batches waits until as long after the last one ended as the last one took, and
never more than ``max_wait_s``: the writes take at most about half of the loop, each carries
what arrived meanwhile, and a quiet group (the next message after the last write is over) is
written in the same turn as ever. The added delay is bounded by the time one write round takes
and by ``max_wait_s``; a connection's own frames (replies, pings, snapshots, a slow client's
conflated data) are never paced, and they keep their order with the batch (see channels.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Flushable", "Flusher"]


class Flushable(Protocol):
    """A connection as the flusher sees it: something that writes what it has queued."""

    def flush(self) -> None: ...


class Flusher:
    """Writes every connection that has pending frames once, at the end of this loop turn."""

    __slots__ = (
        "_channels",
        "_channels_due",
        "_dirty",
        "_loop",
        "_scheduled",
        "_timer",
        "max_wait_s",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, *, max_wait_s: float = 0.0) -> None:
        self._loop = loop
        self._dirty: list[Flushable] = []
        self._channels: list[Flushable] = []
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        #: the loop's clock before which the shared batches are not written (see above)
        self._channels_due = 0.0
        self.max_wait_s = max_wait_s

    def mark(self, conn: Flushable) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def mark_channel(self, channel: Flushable) -> None:
        self._channels.append(channel)
        if self._scheduled or self._timer is not None:
            return
        due = self._channels_due
        if due and self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._flush_paced)
        else:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def _flush_paced(self) -> None:
        """The paced round is due (a member's own frames marked since wait for their turn's
        flush, which comes after this: the channel's frames are appended after theirs)."""
        self._timer = None
        if self._channels:
            self._flush_channels()

    def flush(self) -> None:
        self._scheduled = False
        if self._channels:
            if self._channels_due and self._loop.time() < self._channels_due:
                if self._timer is None:  # connections marked this turn: their own lists now
                    self._timer = self._loop.call_at(self._channels_due, self._flush_paced)
            else:
                self._flush_channels()
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()

    def _flush_channels(self) -> None:
        channels, self._channels = self._channels, []
        started = time.perf_counter()
        for channel in channels:
            channel.flush()  # before the connections: their own lists go first
        if self.max_wait_s:
            took = time.perf_counter() - started
            self._channels_due = self._loop.time() + min(took, self.max_wait_s)
