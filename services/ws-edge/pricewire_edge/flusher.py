"""The write side of the fan-out: every connection with frames queued is written once per turn.

A connection that gets a frame appends it to its ``pending`` list and, the first time in this
event-loop turn, marks itself here; at the end of the turn :meth:`Flusher.flush` has each marked
connection write its list with one ``writelines``. Load raises the batch size, not the number of
syscalls, and nothing is awaited per client. A data group's shared batch (a
:class:`~pricewire_edge.channels.Channel`) marks itself too, and is written first: a member
that also has frames of its own gets the channel's frames appended after them.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["Flushable", "Flusher"]


class Flushable(Protocol):
    """A connection as the flusher sees it: something that writes what it has queued."""

    def flush(self) -> None: ...


class Flusher:
    """Writes every connection that has pending frames once, at the end of this loop turn."""

    __slots__ = ("_channels", "_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Flushable] = []
        self._channels: list[Flushable] = []
        self._scheduled = False

    def mark(self, conn: Flushable) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def mark_channel(self, channel: Flushable) -> None:
        self._channels.append(channel)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._channels:
            channels, self._channels = self._channels, []
            for channel in channels:
                channel.flush()  # before the connections: their own lists go first
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()
