"""Lean clients: a WebSocket client that counts deliveries per read, and costs its core little.

With picows, the load agent calls a Python method for every frame (``on_ws_frame``): about
1.5 us a frame on this VM, so one core of clients takes at most ~600,000 frames a second, and a
saturated fan-out of one message per frame (the edge's protocol, as the guide has it) measured
the clients' core rather than the server's. nats-server packs several messages into one frame,
so the same clients keep up with it more easily. A :class:`LeanClient` is an asyncio protocol
on the agent's uvloop that counts the deliveries of each read with one search, with no call
per frame: the same work for every target, and the server, not the instrument, is what
saturates.

Until it is subscribed it walks frames (the upgrade, ``welcome``/``INFO``, ``subscribed``/
``PONG``); from then on, the rest of the reply's read included (the edge's snapshot), it only
counts: each read's deliveries are the occurrences of the message's start
(``{"type":"price_update"``, or ``MSG `` for nats) in the byte stream, a C search per read
instead of Python per frame. That is exact for what these scenarios send
(frame headers and JSON cannot hold the marker). It does not parse Close frames (its clients
close first), and it answers anything that looks like a server ping with a pong (the edge's
pings every 20 s want one within 20 s; a false match only sends an unsolicited pong, which
RFC 6455 allows). It is used (``Connect.lean``) for the fan-out and latency scenarios and
for the 5,000 clients of the idle scenario, whose set-up time is measured: with picows, the
load agent's core was busy 95-100 % during that storm against both nats-server and the edge
(166-252 us of agent CPU per client), and set the pace; a lean client's upgrade and
subscription cost 72 us, so the server's core is what is measured. The edge's 10,000-client
capacity check and the restart scenario keep picows, a complete client.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from bench.probe import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    client_frame,
    next_frame,
)

if TYPE_CHECKING:
    from bench.load import Client

__all__ = ["LeanClient", "open_lean"]

_PRICE_HEAD = b'{"type":"price_update"'
_TS = re.compile(rb'"updated_at":\s*([0-9.eE+-]+)')


class LeanClient(asyncio.Protocol):
    """One client's socket; ``client`` (a :class:`bench.load.Client`) keeps its counters."""

    def __init__(
        self, client: Client, proto: Literal["pricewire", "nats"], hello: bytes, path: str
    ) -> None:
        self.client = client
        self.nats = proto == "nats"
        self.hello = hello  # pricewire: the subscribe; nats: CONNECT, SUB, PING
        self.path = path
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.subscribed = False
        #: once subscribed (the rate scenarios' steady state): count, do not parse (_count)
        self.counting = False
        self.marker = b"MSG " if self.nats else _PRICE_HEAD
        self.tail = b""
        #: a server ping as the count sees it: the edge's Ping frame header (0x89, a control
        #: frame's opcode byte), nats's PING line; and the answer
        self.keepalive = b"PING\r\n" if self.nats else bytes([0x80 | OP_PING])
        self.pong = client_frame(
            OP_BINARY if self.nats else OP_PONG, b"PONG\r\n" if self.nats else b""
        )
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- what bench.load.Fleet uses of a client transport (as of picows's WSTransport) ---------
    def send_text(self, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.write(client_frame(OP_BINARY if self.nats else OP_TEXT, payload))

    def send_close(self, code: int) -> None:
        if self.transport is not None:
            self.transport.write(client_frame(OP_CLOSE, code.to_bytes(2, "big")))

    def disconnect(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def wait_disconnected(self) -> None:
        await asyncio.shield(self.gone)

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("peername")[:2]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.gone.done():
            self.gone.set_result(None)
        self.client.on_disconnected()

    def data_received(self, data: bytes) -> None:
        if self.counting:
            self._count(data)
            return
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101 "):
                self.disconnect()
                return
            del buf[: end + 4]
            self.upgraded = True
        c = self.client
        delivered = 0
        pos = 0
        # until subscribed: a few frames, one by one; from the reply on, the read is counted
        while not self.counting and (frame := next_frame(buf, pos)) is not None:
            opcode, payload, pos = frame
            if opcode in (OP_TEXT, OP_BINARY):
                k = payload.count(self.marker)  # (nats may pack MSGs with its PONG)
                if k:
                    delivered += k
                    c.nbytes += len(payload)
                    if c.sample:
                        c.sample_latency(_TS.findall(payload))
                self._control(payload)
            elif opcode == OP_CLOSE:
                c.on_close_payload(payload[:2])
                self.send_close(1000)
                self.disconnect()
                return
            elif opcode == OP_PING and self.transport is not None:
                self.transport.write(client_frame(OP_PONG, payload))
        if delivered:
            c.count += delivered
            c.settle()
        if self.counting:  # subscribed: what followed the reply (the snapshot) is counted
            rest = bytes(buf[pos:])
            buf.clear()
            if rest:
                self._count(rest)
        else:
            del buf[:pos]

    def _count(self, data: bytes) -> None:
        """Subscribed: deliveries are occurrences of the message's start in the byte stream
        (the last bytes of the previous read in front, for one cut in two)."""
        c = self.client
        marker = self.marker
        chunk = self.tail + data
        delivered = chunk.count(marker)
        self.tail = chunk[1 - len(marker) :]
        if self.keepalive in data and self.transport is not None:
            # A ping (or bytes that look like one): answered, so that a scenario longer than
            # the server's pong timeout keeps its clients; an unsolicited pong is harmless.
            self.transport.write(self.pong)
        if delivered:
            c.count += delivered
            c.nbytes += len(data)
            if c.sample:
                c.sample_latency(_TS.findall(data))
            c.settle()

    def _control(self, payload: bytes) -> None:
        """A frame that is not a delivery: the handshake of the dialect."""
        c = self.client
        if self.nats:
            if payload.startswith(b"INFO "):
                c.on_welcome()
                self.send_text(self.hello)
            if b"PING\r\n" in payload:
                self.send_text(b"PONG\r\n")
            if not self.subscribed and b"PONG\r\n" in payload:
                self.subscribed = self.counting = True
                c.on_ready()
        elif b'"welcome"' in payload:
            c.on_welcome()
            self.send_text(self.hello)
        elif b'"subscribed"' in payload:
            self.subscribed = self.counting = True
            c.on_ready()


async def open_lean(
    client: Client, url: str, proto: Literal["pricewire", "nats"], hello: bytes
) -> LeanClient:
    """Connect a lean client (the upgrade and the subscription follow on their own)."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: LeanClient(client, proto, hello, parts.path or "/"),
        parts.hostname or "127.0.0.1",
        parts.port or 80,
    )
    return protocol
