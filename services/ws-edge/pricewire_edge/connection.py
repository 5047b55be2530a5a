"""One client connection: asyncio transport + the websockets library's sans-I/O protocol.

The websockets library's ``ServerProtocol`` parses the HTTP request, the handshake and the
client's frames; this class only moves bytes. Outgoing data frames bypass it: the fan-out hands
every connection the same pre-built frame (:func:`~pricewire_edge.protocol.text_frame`), the
connection appends it to a list, and the :class:`Flusher` writes each connection's list with one
``writelines`` per event-loop turn, so load raises the batch size instead of the syscall count
and nothing is awaited per client.

A client whose socket stops draining (``pause_writing``) is *conflated*: instead of a growing
backlog it keeps the latest frame per key (a symbol's price, the market snapshot, the stats),
plus a bounded backlog of frames that cannot be replaced (news, alerts, broadcasts, replies).
When its socket drains it first gets a ``conflated`` notice, then those frames. A client stuck
for ``slow_client_timeout_s`` is closed with 4009 (see :meth:`EdgeApp._sweep`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from pricewire_common.encoding import dumps
from pricewire_contracts import ClientType, Conflated

from .auth import AuthSession, select_subprotocol
from .limits import MessageRateLimiter
from .metrics import CONFLATED_MESSAGES, SLOW_CLIENT_CONFLATIONS
from .protocol import text_frame

if TYPE_CHECKING:
    from .app import EdgeApp

__all__ = ["Connection", "Flusher"]

log = logging.getLogger("pricewire.edge.ws")
# The protocol's own logger writes request lines and frames at DEBUG, tokens included (query
# strings, auth messages): pinned to WARNING whatever the root level, so no token is ever logged.
_protocol_log = logging.getLogger("pricewire.edge.protocol")
_protocol_log.setLevel(logging.WARNING)


class Flusher:
    """Writes every connection that has pending frames once, at the end of this loop turn."""

    __slots__ = ("_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Connection] = []
        self._scheduled = False

    def mark(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()


class Connection(asyncio.Protocol):
    """Server side of one TCP connection: plain HTTP (static, health) or a WebSocket."""

    __slots__ = (
        "app",
        "auth",
        "backlog",
        "client_ip",
        "client_type",
        "committed",
        "connected_at",
        "dropped",
        "fragments",
        "held",
        "inbox",
        "ip_key",
        "last_activity",
        "last_seen",
        "last_sent",
        "latest",
        "marked",
        "paused",
        "paused_at",
        "pending",
        "rate",
        "replaced",
        "session_id",
        "throttle",
        "transport",
        "user",
        "ws",
    )

    def __init__(self, app: EdgeApp) -> None:
        self.app = app
        self.ws = ServerProtocol(
            max_size=app.max_message_bytes,
            select_subprotocol=_select_subprotocol,
            logger=_protocol_log,
        )
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.marked = False
        self.paused = False
        self.paused_at = 0.0
        self.latest: dict[str, tuple[int, bytes]] = {}
        self.backlog: deque[bytes] = deque(maxlen=app.settings.backlog_messages)
        self.replaced = 0
        self.dropped = 0
        self.fragments: list[bytes] | None = None
        self.session_id = ""
        self.client_type = ClientType.API
        self.client_ip = ""
        self.connected_at = 0.0
        self.last_activity = 0.0
        self.user: str | None = None
        self.committed = False  # session counted and announced (see EdgeApp._commit_session)
        self.auth: AuthSession | None = None
        self.rate: MessageRateLimiter | None = None
        self.ip_key: str | None = None  # counted by the connection limiter under this address
        self.last_seen = time.monotonic()  # any frame from the client, pongs included
        self.inbox: list[bytes] | None = None  # messages held while a handshake token is checked
        # client-chosen max_rate_hz: key kind ("p" prices, "m" market) -> min seconds apart
        self.throttle: dict[str, float] = {}
        self.last_sent: dict[str, float] = {}
        self.held: dict[str, tuple[int, bytes]] = {}

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.app.settings.send_buffer_bytes)
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.app.on_close(self)
        self.transport = None

    def pause_writing(self) -> None:
        self.paused = True
        self.paused_at = time.monotonic()
        self.app.slow.add(self)
        SLOW_CLIENT_CONFLATIONS.inc()

    def resume_writing(self) -> None:
        self.paused = False
        self.app.slow.discard(self)
        if self.replaced or self.dropped or self.latest or self.backlog:
            self._drain_conflated()

    # -- incoming -----------------------------------------------------------------------
    def _process(self) -> None:
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.app.on_request(self, event)
            elif isinstance(event, Frame):
                self._on_frame(event)
        self.write_protocol_output()

    def _on_frame(self, frame: Frame) -> None:
        self.last_seen = time.monotonic()
        opcode = frame.opcode
        data = bytes(frame.data)
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self.app.on_message(self, data)
            else:
                self.fragments = [data]
        elif opcode is Opcode.CONT and self.fragments is not None:
            self.fragments.append(data)
            if sum(map(len, self.fragments)) > self.app.max_message_bytes:
                self.fragments = None
                self.close(1009, "message too big")
            elif frame.fin:
                data, self.fragments = b"".join(self.fragments), None
                self.app.on_message(self, data)

    # -- outgoing -----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.ws.state is State.OPEN and self.transport is not None

    def send(self, frame: bytes, key: str | None = None, seq: int = 0) -> None:
        """Queue one pre-built frame (the fan-out's hot path: no await, no copy).

        ``key`` names what a newer frame may replace for a slow client (``None``: nothing).
        """
        if self.paused:
            self._conflate(frame, key, seq)
            return
        if key is not None and self.throttle and self._throttled(frame, key, seq):
            return
        self.pending.append(frame)
        if not self.marked:
            self.marked = True
            self.app.flusher.mark(self)

    def send_now(self, payload: bytes) -> None:
        """A reply to this client (not shared with others): queued like any frame."""
        self.send(text_frame(payload))

    def flush(self) -> None:
        self.marked = False
        transport = self.transport
        if not self.pending or transport is None:
            self.pending.clear()
            return
        if len(self.pending) == 1:
            transport.write(self.pending[0])
        else:
            transport.writelines(self.pending)
        self.pending.clear()

    def _throttled(self, frame: bytes, key: str, seq: int) -> bool:
        """Hold ``frame`` if this key was sent less than 1/max_rate_hz ago (newest one wins)."""
        interval = self.throttle.get(key[0])
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

    def _release(self, key: str) -> None:
        held = self.held.pop(key, None)
        if held is not None and self.transport is not None:
            self.last_sent[key] = asyncio.get_running_loop().time()
            self.send(held[1], None, held[0])

    def _conflate(self, frame: bytes, key: str | None, seq: int) -> None:
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
        self.backlog.clear()
        self.latest.clear()
        self.replaced = self.dropped = 0

    def write_protocol_output(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.ws.data_to_send():
            if data:
                self.pending.append(data)
                self.flush()
            else:  # the protocol says: end of stream
                self.flush()
                transport.close()

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; the socket is aborted if the client does not answer."""
        if self.ws.state is State.OPEN:
            with contextlib.suppress(InvalidState):
                self.ws.send_close(code, reason)
            self.paused = False  # the close frame must not be conflated away
            self.write_protocol_output()
            asyncio.get_running_loop().call_later(3.0, self.abort)
        elif self.transport is not None and self.ws.state is State.CONNECTING:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _select_subprotocol(_: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    chosen = select_subprotocol(offered)
    return Subprotocol(chosen) if chosen else None
