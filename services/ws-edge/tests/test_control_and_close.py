"""Issue 12, problems 2-4: control traffic is never throttled, handshakes are bounded, and the
close code the edge sends is the one the client receives, with nothing after the Close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pricewire_common.encoding import dumps
from pricewire_common.testing import NatsServer
from pricewire_contracts import PriceData, PriceUpdate, SubjectCatalog
from pricewire_edge.app import EdgeApp
from pricewire_edge.frame_keys import STATS_KEY, FrameKey, Stream, price_key
from pricewire_edge.limits import LimitsSettings
from pricewire_edge.settings import EdgeSettings

from .conftest import EdgeFactory, open_client, recv_json, recv_type, wait_for, ws_url
from .rawws import CLOSE, DATA_OPCODES, PING, PONG, RawClient, close_code

S = SubjectCatalog()


@contextlib.asynccontextmanager
async def prices_flowing(nats_client: Any, hz: float = 200) -> AsyncIterator[None]:
    async def run() -> None:
        n = 0
        while True:
            n += 1
            body = PriceUpdate(data=PriceData(symbol="BTC", price=100 + n))
            await nats_client.publish(S.price("BTC"), dumps(body))
            await asyncio.sleep(1 / hz)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- problem 2: throttling never touches control traffic ---------------------------------------


def test_throttle_keys_are_typed_and_built_once_per_symbol() -> None:
    assert price_key("BTC") is price_key("BTC")
    assert price_key("BTC") == FrameKey(Stream.PRICE, "BTC")
    assert price_key("BTC") != FrameKey(Stream.PROVIDER_STATS, "BTC")
    assert price_key("PING") != STATS_KEY  # no prefix can make two kinds share a key
    assert len({price_key("BTC"), FrameKey(Stream.PRICE, "BTC"), STATS_KEY}) == 2


async def test_a_browser_like_client_at_0_02_hz_gets_its_pings_and_stays_connected(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    """It never pings on its own and answers the server's pings, as every browser does."""
    limits = LimitsSettings(ping_interval_s=0.2, ping_timeout_s=0.3)
    edge = await make_edge(limits=limits)
    client = await RawClient.open(edge.port)
    await client.next_json("welcome")
    await client.send_json({"type": "subscribe", "group": "prices", "max_rate_hz": 0.02})
    await client.next_json("subscribed")
    pings = 0
    async with prices_flowing(nats_client, hz=50):
        # 12 pings span several times ping_interval + ping_timeout, and more than one sweep
        while pings < 12:
            opcode, payload = await client.read_frame(timeout=10)
            assert opcode != CLOSE, f"closed with {close_code(payload)}"
            if opcode == PING:
                pings += 1
                await client.send(PONG, payload)
    await client.send_json({"type": "ping"})
    assert (await client.next_json("pong"))["type"] == "pong"
    assert len(edge.connections) == 1
    await client.aclose()


async def test_provider_stats_are_not_throttled_by_a_prices_max_rate(
    edge: EdgeApp, nats_client: Any
) -> None:
    ws = await open_client(edge)
    await ws.send(json.dumps({"type": "subscribe", "group": "prices", "max_rate_hz": 0.02}))
    await recv_type(ws, "subscribed")
    await ws.send(json.dumps({"type": "subscribe", "group": "market"}))
    await recv_type(ws, "subscribed")
    for n in range(3):
        body = {"type": "provider_stats", "data": {"n": n}, "timestamp": "t"}
        await nats_client.publish(S.provider_stats, json.dumps(body).encode())
        assert (await recv_type(ws, "provider_stats", timeout=5))["data"] == {"n": n}
    await ws.close()
    assert ws.close_code == 1000


# -- problem 3: handshake limits ----------------------------------------------------------------

_HALF_UPGRADE = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as r:
        return int(r.status)


async def test_half_open_upgrades_count_against_the_cap_and_are_closed_after_the_timeout(
    make_edge: EdgeFactory,
) -> None:
    # No trusted proxy: 127.0.0.1 is a client address, counted from its first byte.
    limits = LimitsSettings(handshake_timeout_s=2.0, max_connections_per_ip=3, trusted_proxies=[])
    edge = await make_edge(limits=limits)
    half = [await asyncio.open_connection("127.0.0.1", edge.port) for _ in range(3)]
    for _, writer in half:
        writer.write(_HALF_UPGRADE)
        await writer.drain()
    await wait_for(lambda: edge.conn_limiter.count("127.0.0.1") == 3)
    # a fourth from the same address is over the cap: told so after its upgrade, as browsers
    # can read a close code but not an HTTP status...
    over = await connect(ws_url(edge))
    with pytest.raises(ConnectionClosed):
        while True:
            await recv_json(over)
    assert over.close_code == 1008
    # ...or, with too many such refusals under way at once, before reading its request
    edge.conn_limiter.max_refusing = 0
    with pytest.raises(InvalidStatus) as refused:
        await connect(ws_url(edge))
    assert refused.value.response.status_code == 429
    edge.conn_limiter.max_refusing = 64
    for reader, writer in half:
        answer = await asyncio.wait_for(reader.read(), 15)
        assert answer.startswith(b"HTTP/1.1 408 ")
        writer.close()
        await writer.wait_closed()
    await wait_for(lambda: edge.conn_limiter.total == 0)
    # released exactly once: the address gets its whole allowance back; plain HTTP works
    clients = [await open_client(edge) for _ in range(2)]
    assert await asyncio.to_thread(_get, f"http://127.0.0.1:{edge.port}/health") == 200
    clients.append(await open_client(edge))
    for ws in clients:
        await ws.close()
        assert ws.close_code == 1000
    await wait_for(lambda: edge.conn_limiter.total == 0 and edge.conn_limiter.addresses == 0)


async def test_a_proxied_client_is_counted_under_its_forwarded_address(
    make_edge: EdgeFactory,
) -> None:
    """Through a trusted proxy (loopback by default) the request names the client."""
    edge = await make_edge(limits=LimitsSettings(max_connections_per_ip=1))
    first = await open_client(edge, additional_headers={"X-Forwarded-For": "203.0.113.7"})
    other = await open_client(edge, additional_headers={"X-Forwarded-For": "203.0.113.8"})
    assert edge.conn_limiter.count("203.0.113.7") == 1
    assert edge.conn_limiter.count("127.0.0.1") == 0
    over = await connect(ws_url(edge), additional_headers={"X-Forwarded-For": "203.0.113.7"})
    with pytest.raises(ConnectionClosed):
        while True:
            await recv_json(over)
    assert over.close_code == 1008
    for ws in (first, other):
        await ws.close()
    await wait_for(lambda: edge.conn_limiter.total == 0 and edge.conn_limiter.addresses == 0)


# -- problem 4: close semantics -----------------------------------------------------------------


async def test_a_stuck_client_is_closed_with_4009_and_receives_that_code(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    edge = await make_edge(slow_client_timeout_s=1.0, limits=LimitsSettings(close_grace_s=30))
    stuck = await open_client(edge, max_queue=1)
    await stuck.send(json.dumps({"type": "subscribe", "group": "prices"}))
    await recv_type(stuck, "subscribed")
    stuck.transport.pause_reading()  # stops reading: its socket buffers fill up
    note = "x" * 4000
    for n in range(4000):  # ~16 MB: more than loopback socket buffers absorb
        msg = PriceUpdate(data=PriceData(symbol="BTC", price=1 + n), note=note)  # type: ignore[call-arg]
        await nats_client.publish(S.price("BTC"), dumps(msg))
    # the edge gave up on it: its Close frame is queued behind what the socket still holds
    await wait_for(lambda: not any(c.is_open for c in edge.connections), timeout=30)
    stuck.transport.resume_reading()
    with pytest.raises(ConnectionClosed):
        while True:
            await recv_json(stuck, timeout=30)
    assert stuck.close_code == 4009
    await wait_for(lambda: not edge.connections)


async def test_a_draining_edge_sends_no_data_frame_after_its_close_frame(
    nats_server: NatsServer, nats_client: Any
) -> None:
    settings = EdgeSettings(
        port=0, nats_url=nats_server.url, limits=LimitsSettings(close_grace_s=1)
    )
    edge = EdgeApp(settings)
    await edge.start()
    await wait_for(edge.ready)
    client = await RawClient.open(edge.port)
    await client.next_json("welcome")
    await client.send_json({"type": "subscribe", "group": "prices"})
    await client.next_json("subscribed")
    async with prices_flowing(nats_client, hz=400):
        await client.next_json("price_update")
        stopping = asyncio.create_task(edge.stop())
        # the client never answers the Close frame: the edge keeps the socket for the grace
        # period while prices keep arriving from NATS
        frames = await client.frames_until_end(timeout=30)
        await stopping
    closes = [i for i, (opcode, _) in enumerate(frames) if opcode == CLOSE]
    assert closes, "no Close frame arrived"
    assert close_code(frames[closes[0]][1]) == 1012
    after = frames[closes[0] + 1 :]
    assert not [f for f in after if f[0] in DATA_OPCODES], "data frames after the Close frame"
    assert after == []
    await client.aclose()
