"""Outgoing frames of a connection: its own list, and its share of its groups' shared batches.

Mixed into :class:`~pricewire_edge.connection.Connection` (its slots hold the state). Every
frame goes through :meth:`Outbox.send` (data, which a slow or throttled client holds back),
:meth:`Outbox.send_control` / :meth:`Outbox.send_now` (never held back) or
:meth:`Outbox.send_many` (a snapshot), into ``pending``, written by :meth:`Outbox.flush` once
per loop turn. Each of them first takes the connection's share of the frames its data groups
published this turn (:meth:`Outbox.take_shared`, see :mod:`.channels`), so that the
connection's frames keep their order; nothing is queued once a Close frame is (``closing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from .conflation import Conflation
from .frame_keys import FrameKey
from .protocol import text_frame

if TYPE_CHECKING:
    from .channels import Channel
    from .connection import Connection
    from .flusher import Flusher

__all__ = ["Outbox"]


class _Owner(Protocol):
    @property
    def flusher(self) -> Flusher: ...


class Outbox(Conflation):
    """Queueing and writing for :class:`~pricewire_edge.connection.Connection`."""

    # set in Connection.__init__
    __slots__ = ("channels", "closing", "marked", "pending")
    pending: list[bytes]
    marked: bool
    closing: bool  # a Close frame is queued (or the client's): nothing may follow it
    channels: list[Channel]  # the data groups' shared batches it is a member of

    # Connection's own, used here
    owner: _Owner
    paused: bool

    def send(self, frame: bytes, key: FrameKey | None = None, seq: int = 0) -> None:
        """Queue one pre-built data frame (the fan-out's hot path: no await, no copy).

        ``key`` names what a newer frame may replace for a slow or throttled client
        (``None``: nothing; such a frame waits in a slow client's bounded backlog).
        """
        if self.closing:
            return
        if self.channels:
            self.take_shared()
        if self.paused:
            self._conflate(frame, key, seq)
            return
        if key is not None and self.throttle and self._throttled(frame, key, seq):
            return
        self.pending.append(frame)
        if not self.marked:
            self.marked = True
            self.owner.flusher.mark(self)

    def send_many(self, frames: list[bytes]) -> None:
        """Frames that no newer one replaces (a snapshot), queued in one go."""
        if self.paused or self.closing:
            for frame in frames:
                self.send(frame)
            return
        if frames:
            if self.channels:
                self.take_shared()
            self.queue_frames(frames)

    def send_now(self, payload: bytes) -> None:
        """A reply or error to this client: written now, never throttled, never held back.

        A slow client's data waits in its conflation backlog; its replies do not queue behind
        that data (they are bounded by the message rate limit, not by the backlog).
        """
        self.send_control(text_frame(payload))

    def send_control(self, frame: bytes) -> None:
        """A frame that skips throttling and conflation (the server's ping): queued now."""
        if self.closing:
            return
        if self.channels:
            self.take_shared()
        self.pending.append(frame)
        if not self.marked:
            self.marked = True
            self.owner.flusher.mark(self)

    def queue_frames(self, frames: list[bytes]) -> None:
        """Frames a channel had for it this turn, now in its own list (see channels.py)."""
        self.pending.extend(frames)
        if not self.marked:
            self.marked = True
            self.owner.flusher.mark(self)

    def take_shared(self) -> None:
        """What its channels published for it this turn goes first into its own list."""
        conn = cast("Connection", self)
        for channel in self.channels:
            channel.take(conn)

    def refresh_channels(self) -> None:
        """Paused, resumed, throttled or closing: its channels send it frames one by one or not."""
        conn = cast("Connection", self)
        for channel in self.channels:
            channel.refresh(conn)

    def _set_closing(self) -> None:
        """A Close frame is next (or the socket is gone): what was published before it goes
        first, and nothing after it."""
        if self.channels and not self.closing:
            self.take_shared()
        self.closing = True
        if self.channels:
            self.refresh_channels()

    def flush(self) -> None:
        self.marked = False
        transport = self.transport
        pending = self.pending
        if not pending:
            return
        # a new list: a write may pause the connection, which queues a channel's frames here
        self.pending = []
        if transport is None:
            return
        if len(pending) == 1:
            transport.write(pending[0])
        else:
            transport.writelines(pending)
