"""The client's frames on a connection the edge upgraded itself (connection._read_frames).

Whole, short, masked text frames are read by the edge without a websockets protocol; anything
else hands the rest of the stream, from that frame on, to websockets, which answers it as
before. What is checked is what the client receives.
"""

from __future__ import annotations

import asyncio
import json

from pricewire_edge.app import EdgeApp

from .rawws import BINARY, CLOSE, CONT, PING, PONG, TEXT, RawClient, client_frame, close_code

PING_MSG = b'{"type": "ping"}'


async def opened(edge: EdgeApp) -> tuple[RawClient, str]:
    client = await RawClient.open(edge.port)
    welcome = await client.next_json("welcome")
    return client, welcome["session_id"]


async def test_short_text_frames_are_read_without_a_websockets_protocol(edge: EdgeApp) -> None:
    client, sid = await opened(edge)
    # three frames in one write, the edge's common case, then one more
    client.writer.write(
        client_frame(TEXT, b'{"type": "subscribe", "group": "prices"}')
        + client_frame(TEXT, PING_MSG)
        + client_frame(TEXT, b'{"type": "subscribe", "group": "market"}')
    )
    assert (await client.next_json("subscribed"))["group"] == "prices"
    await client.next_json("pong")
    assert (await client.next_json("subscribed"))["group"] == "market"
    await client.send(TEXT, PING_MSG)
    await client.next_json("pong")
    conn = edge.by_session[sid]
    seen = conn.last_seen
    await client.send(PONG)  # what a browser answers to the edge's pings
    await client.send(TEXT, PING_MSG)
    await client.next_json("pong")
    assert conn.last_seen > seen
    assert conn._ws is None and conn.is_open  # all read by the edge itself
    await client.aclose()


async def test_a_frame_cut_by_the_read_a_long_one_binary_and_fragments_still_work(
    edge: EdgeApp,
) -> None:
    client, _ = await opened(edge)
    frame = client_frame(TEXT, PING_MSG)
    client.writer.write(frame[:5])  # cut inside the mask
    await client.writer.drain()
    await asyncio.sleep(0.1)
    client.writer.write(frame[5:])
    await client.next_json("pong")
    long_ping = json.dumps({"type": "ping", "pad": "x" * 200}).encode()  # 16-bit length
    await client.send(TEXT, long_ping)
    pong = await client.next_json("pong")
    assert pong["type"] == "pong"
    await client.send(BINARY, PING_MSG)
    await client.next_json("pong")
    first = client_frame(TEXT, PING_MSG[:6])
    client.writer.write(bytes([first[0] & 0x7F]) + first[1:])  # FIN clear: a first fragment
    client.writer.write(client_frame(CONT, PING_MSG[6:]))
    await client.next_json("pong")
    await client.aclose()


async def test_control_frames_get_websockets_answers(edge: EdgeApp) -> None:
    client, _ = await opened(edge)
    await client.send(PING, b"are you there")
    opcode, payload = await client.read_frame()
    while opcode != PONG:
        opcode, payload = await client.read_frame()
    assert payload == b"are you there"
    await client.send(CLOSE, (4000).to_bytes(2, "big") + b"bye")
    frames = await client.frames_until_end(10)
    closes = [payload for opcode, payload in frames if opcode == CLOSE]
    assert [close_code(p) for p in closes] == [4000]  # echoed, and nothing after it
    assert frames[-1][0] == CLOSE
    await client.aclose()


async def test_invalid_utf8_gets_an_error_reply_and_an_unmasked_frame_1002(
    edge: EdgeApp,
) -> None:
    for websockets_first in (False, True):
        client, sid = await opened(edge)
        if websockets_first:  # a control frame: websockets reads from then on
            await client.send(PING, b"x")
        await client.send(TEXT, b'{"type": "ping", "x": "\xff"}')
        error = await client.next_json("error")  # either way the message parser answers
        assert error["code"] == "invalid_json"
        assert (edge.by_session[sid]._ws is not None) is websockets_first
        await client.send(TEXT, PING_MSG)
        await client.next_json("pong")
        await client.aclose()
    client, _ = await opened(edge)
    client.writer.write(bytes([0x81, len(PING_MSG)]) + PING_MSG)  # no mask bit
    frames = await client.frames_until_end(10)
    assert [close_code(p) for op, p in frames if op == CLOSE] == [1002]
    await client.aclose()
