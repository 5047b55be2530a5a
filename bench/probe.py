"""Probe clients: a minimal WebSocket client on a plain socket that reads with ``recvmsg`` and
``SO_TIMESTAMPNS``, so every frame carries the time the kernel queued it on the socket.

Why: the load agent is one process on one core. When a tick fans out to 2,000 clients, it
reads 2,000 sockets one after another, and the last one is read tens of milliseconds after its
frame arrived. That delay belongs to the instrument, not to the server (real clients do not
share a core). A few probes spread through the connection order measure publish-to-arrival
from the kernel's receive timestamp, which the agent's own busy loop cannot delay. On
loopback the timestamp is taken as the server's ``send()`` hands the segment over.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

_SO_TIMESTAMPNS = 35  # Linux; Python's socket module does not export it
_CMSG_SPACE = socket.CMSG_SPACE(16)

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(RuntimeError):
    pass


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 section 5.2).

    >>> client_frame(OP_TEXT, b"")[:2]
    b'\\x81\\x80'
    """
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return head + mask + masked


def next_frame(buf: bytearray, pos: int) -> tuple[int, bytes, int] | None:
    """The complete server (unmasked) frame at ``buf[pos:]``: opcode, payload and where the
    next frame starts; ``None`` if the frame is not all there yet.

    >>> next_frame(bytearray(b"\\x81\\x02hi\\x81"), 0), next_frame(bytearray(b"\\x81"), 0)
    ((1, b'hi', 4), None)
    """
    end = len(buf)
    if end - pos < 2:
        return None
    opcode = buf[pos] & 0x0F
    n = buf[pos + 1] & 0x7F
    head = 2
    if n == 126:
        if end - pos < 4:
            return None
        n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
        head = 4
    elif n == 127:
        if end - pos < 10:
            return None
        n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        head = 10
    if end - pos < head + n:
        return None
    return opcode, bytes(buf[pos + head : pos + head + n]), pos + head + n


def parse_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take every complete server (unmasked) frame off the front of ``buf``.

    >>> b = bytearray(b"\\x81\\x02hi\\x81")
    >>> parse_frames(b), bytes(b)
    ([(1, b'hi')], b'\\x81')
    """
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while (frame := next_frame(buf, pos)) is not None:
        opcode, payload, pos = frame
        frames.append((opcode, payload))
    del buf[:pos]
    return frames


class Probe:
    """One probe connection. ``on_payload(payload, kernel_time)`` gets each data frame."""

    def __init__(self, on_payload: Callable[[Probe, bytes, float], None]) -> None:
        self.on_payload = on_payload
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.closed = asyncio.get_running_loop().create_future()
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def open(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = parts.path or "/"
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock = sock
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        loop.add_reader(sock.fileno(), self._readable)

    def send(self, opcode: int, payload: bytes) -> None:
        if self.sock is not None:
            # tiny frames on an idle socket: the kernel takes them whole
            self.sock.send(client_frame(opcode, payload))

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.ready.done():
            self.ready.set_result(False)

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            data, ancillary, _, _ = sock.recvmsg(1 << 16, _CMSG_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        stamp = 0.0
        for level, kind, cdata in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = struct.unpack("qq", cdata[:16])
                stamp = sec + nsec * 1e-9
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                self.close()
                return
            del self.buf[: end + 4]
            self.upgraded = True
        for opcode, payload in parse_frames(self.buf):
            if opcode in (OP_TEXT, OP_BINARY):
                self.on_payload(self, payload, stamp)
            elif opcode == OP_PING:
                self.send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.send(OP_CLOSE, payload[:2])
                self.close()
                return
