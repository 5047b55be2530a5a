"""One shared batch per data group: a message is appended once, not once per receiver.

A :class:`Channel` is the set of connections that receive a whole data group (the subscription
index's ``whole[group]``). Most of them are alike: not paused, not throttled, not closing. Those
are its ``fast`` members, and a message of the group is appended to the channel's list of this
loop turn once (:meth:`Channel.publish`), whatever their number; the others (``slow``) get it
through :meth:`~pricewire_edge.connection.Connection.send` (conflation, throttling) as before.
At the end of the turn (:meth:`Channel.flush`, from the flusher, before the connections' own
lists) the turn's frames are joined once and each fast member writes them with one
``transport.write`` of the same bytes. Per message the work is one append; per connection and
turn, one write.

Order. A member's frames go out in the order it was given them:

- each member has a cursor into the turn's list: one that joins (subscribes, or stops being
  slow) during the turn gets only what was published after it joined;
- anything a member is sent on its own (a reply, a snapshot, a heartbeat, a Close frame) first
  moves the channel frames it has not written yet into its own list (:meth:`Channel.take`),
  and so does leaving the channel or the fast set (unsubscribe, pause, throttle, close);
- the connection's own list is written before the rest of the turn's channel frames.

Nothing follows a Close frame: a closing member takes its share before the Close is queued and
is skipped by :meth:`Channel.flush`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pricewire_contracts import Group

from .frame_keys import FrameKey

if TYPE_CHECKING:
    from .connection import Connection
    from .flusher import Flusher

__all__ = ["Channel"]


class Channel(set["Connection"]):
    """The connections that receive all of ``group``, with the group's frames of this turn."""

    __slots__ = ("cursor", "fast", "flusher", "frames", "group", "marked", "slow")

    def __init__(self, group: Group) -> None:
        super().__init__()
        self.group = group
        self.fast: set[Connection] = set()
        self.slow: set[Connection] = set()
        self.frames: list[bytes] = []
        #: members whose share of this turn's frames starts after 0 (joined late, or took it)
        self.cursor: dict[Connection, int] = {}
        self.marked = False
        self.flusher: Flusher | None = None  # set when the edge starts (it needs the loop)

    # -- membership (the subscription index calls add and discard) --------------------------
    def add(self, conn: Connection) -> None:
        if conn in self:
            return
        super().add(conn)
        conn.channels.append(self)
        self._place(conn)

    def discard(self, element: object) -> None:
        if element not in self:
            return
        conn = cast("Connection", element)
        self.take(conn)
        super().discard(conn)
        conn.channels.remove(self)
        self.fast.discard(conn)
        self.slow.discard(conn)
        self.cursor.pop(conn, None)

    def refresh(self, conn: Connection) -> None:
        """The connection was paused, resumed, throttled or closed: fast or slow from now on."""
        if conn.paused or conn.throttle or conn.closing:
            if conn in self.fast:
                self.take(conn)
                self.fast.discard(conn)
                self.cursor.pop(conn, None)
            self.slow.add(conn)
        elif conn not in self.fast:
            self.slow.discard(conn)
            self._place(conn)

    def _place(self, conn: Connection) -> None:
        if conn.paused or conn.throttle or conn.closing:
            self.slow.add(conn)
            return
        self.fast.add(conn)
        if self.frames:
            self.cursor[conn] = len(self.frames)  # only what is published from now on

    # -- frames ---------------------------------------------------------------------------
    def publish(self, frame: bytes, key: FrameKey | None, seq: int) -> int:
        """One message to every member; returns how many members that is."""
        if self.fast:
            self.frames.append(frame)
            if not self.marked:
                self.marked = True
                assert self.flusher is not None
                self.flusher.mark_channel(self)
        for conn in self.slow:
            conn.send(frame, key, seq)
        return len(self)

    def take(self, conn: Connection) -> None:
        """Move the frames of this turn the member has not written yet into its own list."""
        frames = self.frames
        if not frames or conn.closing or conn not in self.fast:
            return
        n = len(frames)
        start = self.cursor.get(conn, 0)
        if start < n:
            self.cursor[conn] = n
            conn.queue_frames(frames[start:])

    def flush(self) -> None:
        """Write this turn's frames to every fast member: joined once, one write each."""
        self.marked = False
        frames, self.frames = self.frames, []
        cursor, self.cursor = self.cursor, {}
        if not frames:
            return
        joined = frames[0] if len(frames) == 1 else b"".join(frames)
        n = len(frames)
        for conn in list(self.fast):  # a write can pause a member (it leaves the fast set)
            if cursor:
                start = cursor.get(conn, 0)
                if start >= n:
                    continue
                data = joined if start == 0 else b"".join(frames[start:])
            else:
                data = joined
            transport = conn.transport
            if transport is None or conn.closing:
                continue
            if conn.marked:  # its own list goes first; the connection writes both at once
                conn.pending.append(data)
            else:
                transport.write(data)
