"""One client connection: asyncio transport + the websockets library's sans-I/O protocol.

The connection's first read is offered to :func:`~pricewire_edge.upgrade.parse_upgrade`: a
plain, valid upgrade request to the WebSocket path, whole in that read (what nearly every
client sends), is read by the edge itself and answered with a 101 from a template
(:meth:`Connection.accept`), and the client's frames are read by the edge too as long as they
are whole, short, masked text frames (:meth:`Connection._read_frames`: ``subscribe``,
``ping``, ``get_stats``). At the first other frame the connection's websockets
``ServerProtocol`` is made, OPEN, and parses every frame from there on; most connections of a
connect storm never need one. Anything else at the upgrade (other paths, a request split over
reads, an unusual or invalid request) goes to a ``ServerProtocol`` in CONNECTING state, which
parses the request and answers errors as before. Either way the request goes to the owner's
``on_request``.

Outgoing data frames bypass websockets: the fan-out hands every connection the same pre-built
frame (:func:`~pricewire_edge.protocol.text_frame`), the connection appends it to a list, and
the :class:`~pricewire_edge.flusher.Flusher` writes each connection's list with one
``writelines`` per event-loop turn. A whole data group's frames are not even appended per
connection: they wait in the group's shared batch (:mod:`.channels`), and anything this
connection is sent on its own first takes its share of that batch (:meth:`Connection.take_shared`), so its frames keep their order.

A client whose socket stops draining (``pause_writing``) is *conflated*, and a subscription's
``max_rate_hz`` throttles it (both in :mod:`.conflation`). A client stuck for
``slow_client_timeout_s`` is closed with 4009 (see :meth:`.sessions.Sessions.sweep`).

Control traffic is never throttled, conflated or queued behind data: the server's pings
(:meth:`Connection.send_control`), replies and errors (:meth:`Connection.send_now`) are
written at once, ahead of a slow client's conflation backlog, and so is the Close frame. Once a Close frame is queued, nothing else is (RFC 6455 §5.5.1): frames
queued before it go before it, later ones are dropped. The socket is aborted
``limits.close_grace_s`` after the Close frame if the client has not answered it.

A connection counts against the connection limits from ``connection_made`` (by its peer
address, or in the total only when the peer is a trusted proxy, until the request names the
client) to ``connection_lost``, and must send its request within ``limits.handshake_timeout_s``.

The connection knows the edge only as a :class:`ConnectionOwner`, defined here: the few
settings and shared objects it uses, and where it hands requests, messages and its close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from pricewire_contracts import ClientType

from .auth import AuthSession, select_subprotocol
from .flusher import Flusher
from .frame_keys import FrameKey, Stream
from .limits import ConnectionLimiter, LimitsSettings, MessageRateLimiter, Refusal
from .metrics import HANDSHAKES_REFUSED, SLOW_CLIENT_CONFLATIONS
from .outbox import Outbox
from .upgrade import HandshakeRequest, UpgradeRequest, parse_upgrade, switching_protocols

if TYPE_CHECKING:
    from .channels import Channel

__all__ = ["Connection", "ConnectionOwner", "Flusher"]


class ConnectionOwner(Protocol):
    """What a :class:`Connection` needs from the edge that accepted it; nothing else."""

    @property
    def limits(self) -> LimitsSettings: ...
    @property
    def send_buffer_bytes(self) -> int: ...
    @property
    def backlog_messages(self) -> int: ...
    @property
    def max_message_bytes(self) -> int: ...
    @property
    def ws_path(self) -> str:
        """The WebSocket endpoint's path (``/ws``): the only one the edge's own parser reads."""

    @property
    def conn_limiter(self) -> ConnectionLimiter: ...
    @property
    def flusher(self) -> Flusher: ...
    @property
    def slow(self) -> set[Connection]:
        """Connections whose socket stopped draining (closed by the sweep if they stay so)."""

    @property
    def on_request(self) -> Callable[[Connection, HandshakeRequest], None]:
        """The HTTP request arrived (an upgrade, or a plain GET): websockets' ``Request``, or
        an :class:`~pricewire_edge.upgrade.UpgradeRequest` (to be answered with
        :meth:`Connection.accept`, like the other)."""

    @property
    def on_message(self) -> Callable[[Connection, bytes], None]:
        """A whole client message (fragments joined)."""

    @property
    def on_close(self) -> Callable[[Connection], None]:
        """The socket is gone."""


log = logging.getLogger("pricewire.edge.ws")
# The protocol's own logger writes request lines and frames at DEBUG, tokens included (query
# strings, auth messages): pinned to WARNING whatever the root level, so no token is ever logged.
_protocol_log = logging.getLogger("pricewire.edge.protocol")
_protocol_log.setLevel(logging.WARNING)


class Connection(Outbox, asyncio.Protocol):
    """Server side of one TCP connection: plain HTTP (static, health) or a WebSocket."""

    __slots__ = (
        "_abort_timer",
        "_handshake_timer",
        "_subprotocol",
        "_upgraded",
        "_ws",
        "auth",
        "client_ip",
        "client_type",
        "committed",
        "connected_at",
        "counted",
        "fragments",
        "inbox",
        "ip_key",
        "last_activity",
        "last_seen",
        "owner",
        "paused",
        "paused_at",
        "rate",
        "refusal",
        "refused",
        "resume_hash",
        "rota",
        "session_id",
        "transport",
        "user",
    )

    owner: ConnectionOwner

    def __init__(self, owner: ConnectionOwner) -> None:
        self.owner = owner
        self._ws: ServerProtocol | None = None  # made on first use: see ws
        self._upgraded = False  # accepted by the edge's own 101: no websockets protocol yet
        self._subprotocol: str | None = None  # the one that 101 selected
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.marked = False
        # the data groups' shared batches it is a member of (see channels.py)
        self.channels: list[Channel] = []
        self.rota = -1  # its slot for pings and heartbeats (see rota.py)
        self.paused = False
        self.paused_at = 0.0
        self.latest: dict[FrameKey, tuple[int, bytes]] = {}
        # a slow client's frames that no newer one replaces (news, alerts, broadcasts), bounded
        self.backlog: deque[bytes] = deque(maxlen=owner.backlog_messages)
        self.closing = False  # a Close frame is queued (or the client's): nothing may follow it
        self.refused = False  # over a connection limit at connect: answered, then closed
        self.refusal: Refusal | None = None  # over a limit, told so after its upgrade (1008/1013)
        self.counted = False  # counted by the connection limiter (under ip_key) until released
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self.replaced = 0
        self.dropped = 0
        self.fragments: list[bytes] | None = None
        self.session_id = ""
        self.resume_hash = b""  # SHA-256 of the session's private resume token (see resume.py)
        self.client_type = ClientType.API
        self.client_ip = ""
        self.connected_at = 0.0
        self.last_activity = 0.0
        self.user: str | None = None
        self.committed = False  # session counted and announced (see Sessions.commit)
        self.auth: AuthSession | None = None
        self.rate: MessageRateLimiter | None = None
        self.ip_key: str | None = None  # the limiter's address for it (None: the total only)
        self.last_seen = time.monotonic()  # any frame from the client, pongs included
        self.inbox: list[bytes] | None = None  # messages held while a handshake token is checked
        # client-chosen max_rate_hz: stream (prices, market only) -> min seconds apart
        self.throttle: dict[Stream, float] = {}
        self.last_sent: dict[FrameKey, float] = {}
        self.held: dict[FrameKey, tuple[int, bytes]] = {}

    @property
    def ws(self) -> ServerProtocol:
        """The websockets protocol, made on first use: OPEN after :meth:`accept` took a
        request the edge parsed itself (the first frame the edge does not read itself, a
        Close to send, ...), else CONNECTING, to parse the request."""
        ws = self._ws
        if ws is None:
            if self._upgraded:
                ws = self._ws = self._protocol(State.OPEN)
                chosen = self._subprotocol
                ws.subprotocol = Subprotocol(chosen) if chosen else None
            else:
                ws = self._ws = self._protocol(State.CONNECTING)
        return ws

    @property
    def close_code_received(self) -> int | None:
        """The code of the client's Close frame, if one came (a Close always goes to
        websockets: see :meth:`_read_frames`)."""
        ws = self._ws
        return ws.close_rcvd.code if ws is not None and ws.close_rcvd else None

    def _protocol(self, state: State) -> ServerProtocol:
        return ServerProtocol(
            max_size=self.owner.max_message_bytes,
            select_subprotocol=_select_subprotocol,
            logger=_protocol_log,
            state=state,
        )

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.owner.send_buffer_bytes)
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        limits = self.owner.limits
        # Counted from the first byte, not from the upgrade: a trusted proxy's connections by
        # the total only until the request names the client (Handshakes.on_request re-keys them).
        key = None if limits.trusted_peer(self.client_ip) else self.client_ip
        limiter = self.owner.conn_limiter
        refusal = limiter.acquire(key)
        if refusal is not None and limiter.refusing >= limiter.max_refusing:
            self._refuse(refusal)
            return
        if refusal is not None:
            # A few over-limit connections at a time may finish their upgrade, to be closed
            # with the code a browser can see (Handshakes.on_request); plain HTTP is served.
            self.refusal = refusal
            limiter.refusing += 1
        else:
            self.ip_key, self.counted = key, True
        self._handshake_timer = asyncio.get_running_loop().call_later(
            limits.handshake_timeout_s, self._handshake_expired
        )

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # the refusal is on its way; the request is not read
        ws = self._ws
        if ws is None:
            if self._upgraded:  # the edge's own 101 went out: the client's frames
                self._read_frames(data)
                return
            # the first read: the common upgrade is read here, the rest by websockets
            parsed = parse_upgrade(data, self.owner.ws_path)
            if parsed is not None:
                request, frames_at = parsed
                self._on_request(request)
                if self._ws is None and self._upgraded:  # accepted (the 101 is queued)
                    if frames_at < len(data):  # frames sent with the request
                        self._read_frames(data[frames_at:])
                    return
                ws = self.ws
                if frames_at < len(data):
                    ws.receive_data(data[frames_at:])
                self._process()  # a refusal to write (or the close of an accepted one)
                return
            ws = self.ws
        ws.receive_data(data)
        self._process()

    def _read_frames(self, data: bytes) -> None:
        """The client's frames before the connection needs a websockets protocol.

        Nearly every client frame is a whole, masked, unfragmented text frame of fewer than
        126 bytes (``subscribe``, ``ping``, ``get_stats``) or the pong to the edge's ping, in
        one read: read here, with no ``ServerProtocol`` made for the connection. At the first frame that is anything else
        (a Close, a client's ping, binary, fragmented, longer, cut by the read, unmasked) the
        connection's protocol is made, OPEN, and gets the rest of the bytes from that frame
        on: it starts on a frame boundary, so nothing of its own state is skipped, and it
        answers whatever is wrong exactly as before (1002 for an unmasked frame, ...). Once
        made, it reads every later frame. Text is not checked for UTF-8 here, as websockets'
        sans-I/O protocol does not check it either: the message parser answers bad bytes.
        """
        pos, end = 0, len(data)
        on_message = self.owner.on_message
        while end - pos >= 6:
            head = data[pos]
            length = data[pos + 1] ^ 0x80  # the mask bit, set on every client frame
            if head not in (0x81, 0x8A) or length > 125 or pos + 6 + length > end:
                break  # not FIN + text or pong with no RSV bits, unmasked, long, or cut
            start = pos + 6
            pos = start + length
            self.last_seen = time.monotonic()
            if head == 0x8A:
                continue  # a pong (to the edge's own pings, sessions.py): seen, nothing else
            on_message(self, _unmask(data[start:pos], data[start - 4 : start]))
            if self._ws is not None:
                break  # the message made the protocol (a Close to send): it reads the rest
        if pos < end:
            self.ws.receive_data(data[pos:])
            self._process()

    def eof_received(self) -> bool | None:
        if self.refused:
            return False
        self.ws.receive_eof()
        self._process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._handshake_timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self._handshake_timer = self._abort_timer = None
        self._set_closing()
        self.owner.on_close(self)
        if self.counted:
            self.counted = False
            self.owner.conn_limiter.release(self.ip_key)
        if self.refusal is not None:
            self.refusal = None
            self.owner.conn_limiter.refusing -= 1
        self.transport = None

    def _refuse(self, refusal: Refusal) -> None:
        """Over a connection limit, with too many such already waiting: HTTP 429/503 at once.

        The response goes out at once and the socket is half-closed; the request, if any, is
        read and discarded so that closing does not reset the connection under the response.
        """
        HANDSHAKES_REFUSED.labels(refusal.reason).inc()
        transport = self.transport
        assert transport is not None
        self.refused = self.closing = True
        response = self.ws.reject(refusal.http_status, refusal.message + "\n")
        transport.write(response.serialize())
        if transport.can_write_eof():
            transport.write_eof()
            self._abort_timer = asyncio.get_running_loop().call_later(
                self.owner.limits.close_grace_s, self.abort
            )
        else:
            transport.close()

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self.transport is None or self.ws.state is not State.CONNECTING:
            return
        HANDSHAKES_REFUSED.labels("handshake_timeout").inc()
        self.closing = True
        self.ws.send_response(self.ws.reject(408, "request not completed in time\n"))
        self.write_protocol_output()  # the response, then the end of the stream

    def pause_writing(self) -> None:
        self.paused = True
        self.paused_at = time.monotonic()
        self.owner.slow.add(self)
        SLOW_CLIENT_CONFLATIONS.inc()
        self.refresh_channels()

    def resume_writing(self) -> None:
        self.paused = False
        self.owner.slow.discard(self)
        self.refresh_channels()
        if self.closing:
            return
        if self.replaced or self.dropped or self.latest or self.backlog:
            self._drain_conflated()

    # -- incoming -----------------------------------------------------------------------
    def _process(self) -> None:
        ws = self.ws
        for event in ws.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif isinstance(event, Frame):
                self._on_frame(event)
        if (ws.state is State.CLOSING or ws.state is State.CLOSED) and not self.closing:
            self._set_closing()  # the client's Close was answered: no frame may follow
        self.write_protocol_output()

    def _on_request(self, request: HandshakeRequest) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self.owner.on_request(self, request)

    def accept(self, request: HandshakeRequest) -> bool:
        """Accept the upgrade: its 101 is queued to go out at the end of this loop turn, with
        what follows it in this turn (the ``welcome``: one write). ``False``: websockets found
        the request invalid, and its HTTP error is queued instead.

        A request the edge parsed itself (:class:`~pricewire_edge.upgrade.UpgradeRequest`,
        valid by construction) is answered from a template, and the websockets protocol is
        made OPEN when first needed (:meth:`_read_frames`); websockets' own ``Request`` goes
        through ``ServerProtocol.accept``.
        """
        if isinstance(request, UpgradeRequest):
            self._upgraded = True  # the protocol is made OPEN when needed (see ws)
            chosen = self._subprotocol = select_subprotocol(request.subprotocols)
            self.pending.append(switching_protocols(request.key, chosen))
            if not self.marked:
                self.marked = True
                self.owner.flusher.mark(self)
            return True
        assert isinstance(request, Request)
        ws = self.ws
        response = ws.accept(request)
        ws.send_response(response)
        self.write_protocol_output(now=False)
        return response.status_code == 101

    def _on_frame(self, frame: Frame) -> None:
        self.last_seen = time.monotonic()
        opcode = frame.opcode
        data = bytes(frame.data)
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self.owner.on_message(self, data)
            else:
                self.fragments = [data]
        elif opcode is Opcode.CONT and self.fragments is not None:
            self.fragments.append(data)
            if sum(map(len, self.fragments)) > self.owner.max_message_bytes:
                self.fragments = None
                self.close(1009, "message too big")
            elif frame.fin:
                data, self.fragments = b"".join(self.fragments), None
                self.owner.on_message(self, data)

    # -- outgoing -----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        if self.transport is None:
            return False
        ws = self._ws
        return self._upgraded if ws is None else ws.state is State.OPEN

    def write_protocol_output(self, *, now: bool = True) -> None:
        """What the protocol has to send (a response, a pong, a Close frame), after what is
        queued. ``now=False``: at the end of this loop turn, with what follows it in this turn
        (the 101 and the ``welcome`` in one write)."""
        transport = self.transport
        if transport is None or self._ws is None:
            return  # no protocol yet: nothing of its own to send
        output = self._ws.data_to_send()
        if not output:
            return  # nothing to put after what is queued (most client frames)
        if self.channels and not self.closing:
            self.take_shared()
        for data in output:
            if data:
                self.pending.append(data)
                if now:
                    self.flush()
                elif not self.marked:
                    self.marked = True
                    self.owner.flusher.mark(self)
            else:  # the protocol says: end of stream
                self.flush()
                transport.close()

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake: the Close frame goes out now, after what is already
        queued and ahead of a slow client's backlog (dropped, like any later frame). The socket
        is aborted ``close_grace_s`` later if the client has not answered."""
        if self.ws.state is State.OPEN:
            self._set_closing()
            self._discard_held()
            self.held.clear()
            with contextlib.suppress(InvalidState):
                self.ws.send_close(code, reason)
            self.write_protocol_output()
            if self.transport is not None and self._abort_timer is None:
                self._abort_timer = asyncio.get_running_loop().call_later(
                    self.owner.limits.close_grace_s, self.abort
                )
        elif self.transport is not None and self.ws.state is State.CONNECTING:
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _select_subprotocol(_: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    chosen = select_subprotocol(offered)
    return Subprotocol(chosen) if chosen else None


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 §5.3: ``payload`` XOR the 4-byte ``mask`` repeated (as one integer XOR).

    >>> _unmask(_unmask(b"hello", b"abcd"), b"abcd")
    b'hello'
    """
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")
