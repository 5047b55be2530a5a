"""The lean client: the handshake by frames, then deliveries counted per read, cut anywhere."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bench.lean import LeanClient
from bench.load import Client as FleetClient
from bench.load import Fleet
from bench.probe import OP_PONG, OP_TEXT

from .test_probe import _server_frame, _unmask


class Wire:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 8080)

    def close(self) -> None:
        pass


def price(i: int) -> bytes:
    body = {"type": "price_update", "data": {"symbol": "BTC", "updated_at": 1.5}, "seq": i}
    return _server_frame(OP_TEXT, json.dumps(body, separators=(",", ":")).encode())


async def test_the_handshake_then_every_delivery_counted_however_the_stream_is_cut() -> None:
    client = FleetClient(Fleet(), 0)
    client.ready = asyncio.get_running_loop().create_future()
    lean = LeanClient(client, "pricewire", b'{"type":"subscribe","group":"prices"}', "/ws")
    wire = Wire()
    lean.connection_made(wire)  # type: ignore[arg-type]
    assert wire.written[0].startswith(b"GET /ws HTTP/1.1\r\n")
    lean.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    lean.data_received(_server_frame(OP_TEXT, b'{"type":"welcome","session_id":"s"}'))
    assert _unmask(wire.written[1]) == (OP_TEXT, b'{"type":"subscribe","group":"prices"}')
    # the reply and the first deliveries (the snapshot) in one read, the last one cut;
    # then 50 more, cut every 7 bytes
    reply = _server_frame(OP_TEXT, b'{"type":"subscribed"}') + price(0) + price(1)
    lean.data_received(reply[:-40])
    assert client.ready.done() and client.count == 2
    lean.data_received(reply[-40:])
    assert client.count == 2
    stream = b"".join(price(i) for i in range(2, 52))
    for at in range(0, len(stream), 7):
        lean.data_received(stream[at : at + 7])
    assert client.count == 52
    # the edge's ping among deliveries: counted around, and answered with a pong
    written = len(wire.written)
    lean.data_received(price(52) + b"\x89\x00" + price(53))
    assert client.count == 54
    assert [_unmask(w)[0] for w in wire.written[written:]] == [OP_PONG]


async def test_nats_counts_every_msg_of_a_packed_frame() -> None:
    client = FleetClient(Fleet(), 0)
    client.ready = asyncio.get_running_loop().create_future()
    lean = LeanClient(client, "nats", b"CONNECT {}\r\nSUB p.* 1\r\nPING\r\n", "/")
    lean.connection_made(Wire())  # type: ignore[arg-type]
    lean.data_received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    lean.data_received(_server_frame(OP_TEXT, b"INFO {}\r\n"))
    lean.data_received(_server_frame(OP_TEXT, b"PONG\r\n"))
    assert client.ready.done()
    msg = b'MSG p.BTC 1 14\r\n{"price":1.25}\r\n'
    lean.data_received(_server_frame(OP_TEXT, msg * 3) + _server_frame(OP_TEXT, msg))
    assert client.count == 4
