"""A WebSocket client at the frame level, for tests that must see every frame the edge sends.

Libraries answer pings and Close frames by themselves and hide what follows a Close; this
client hides nothing: :meth:`RawClient.read_frame` returns each frame as it arrived, and the
test decides whether to answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from typing import Any

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = frozenset({CONT, TEXT, BINARY})

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One masked frame with FIN set, as a client must send it."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code(payload: bytes) -> int | None:
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, path: str = "/ws", *, user_agent: str = BROWSER_UA) -> RawClient:
        """Connect and upgrade; raises AssertionError unless the answer is 101."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nUser-Agent: {user_agent}\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    async def read_frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """The next frame: (opcode, payload). Raises IncompleteReadError at the end of stream."""

        async def read() -> tuple[int, bytes]:
            first, second = await self.reader.readexactly(2)
            n = second & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            assert not second & 0x80, "a server's frames are never masked"
            assert first & 0x80, "the edge sends whole frames"
            return first & 0x0F, await self.reader.readexactly(n)

        return await asyncio.wait_for(read(), timeout)

    async def frames_until_end(self, timeout: float = 30.0) -> list[tuple[int, bytes]]:
        """Every frame until the edge ends the stream (EOF or reset), answering nothing."""
        frames: list[tuple[int, bytes]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                frames.append(await self.read_frame(max(left, 0.01)))
            except (asyncio.IncompleteReadError, ConnectionResetError):
                return frames

    async def send(self, opcode: int, payload: bytes = b"") -> None:
        self.writer.write(client_frame(opcode, payload))
        await self.writer.drain()

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send(TEXT, json.dumps(message).encode())

    async def next_json(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next text message of type ``kind``; pings are answered like a browser does."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            opcode, payload = await self.read_frame(max(left, 0.01))
            if opcode == PING:
                await self.send(PONG, payload)
            elif opcode == CLOSE:
                raise AssertionError(f"closed with {close_code(payload)} before {kind!r}")
            elif opcode == TEXT:
                body: dict[str, Any] = json.loads(payload)
                if body["type"] == kind:
                    return body

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
