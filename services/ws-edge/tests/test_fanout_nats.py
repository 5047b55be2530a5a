"""The edge against a real nats-server: group routing, unsubscribe, fan-out to many clients."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from pricewire_common.encoding import dumps
from pricewire_contracts import Group, PriceData, PriceUpdate, SubjectCatalog
from pricewire_edge.app import EdgeApp
from pricewire_edge.limits import LimitsSettings

from .conftest import EdgeFactory, open_client, recv_json, recv_type, wait_for

S = SubjectCatalog()


def price(symbol: str, value: float) -> bytes:
    return dumps(PriceUpdate(data=PriceData(symbol=symbol, price=value, change_24h=1.0)))


async def subscribe(ws: ClientConnection, group: str, **extra: Any) -> None:
    await ws.send(json.dumps({"type": "subscribe", "group": group, **extra}))
    reply = await recv_type(ws, "subscribed")
    assert reply["group"] == group


async def test_a_price_reaches_prices_subscribers_and_not_market_ones(
    edge: EdgeApp, nats_client: Any
) -> None:
    prices = await open_client(edge)
    market = await open_client(edge)
    await subscribe(prices, "prices")
    await subscribe(market, "market")
    await nats_client.publish(S.price("BTC"), price("BTC", 43250.5))
    got = await recv_type(prices, "price_update")
    assert got["data"] == {
        "symbol": "BTC",
        "price": 43250.5,
        "change_24h": 1.0,
        "sources": 1,
        "stale": False,
        "venues": [],
    }
    assert isinstance(got["seq"], int)
    await nats_client.publish(
        S.market, b'{"type":"market_update","data":{"btc":{"price":1.0}},"timestamp":"t"}'
    )
    assert (await recv_type(market, "market_update"))["data"] == {"btc": {"price": 1.0}}
    with pytest.raises(TimeoutError):
        await recv_type(market, "price_update", timeout=0.5)
    await prices.close()
    await market.close()


async def test_unsubscribe_stops_delivery(edge: EdgeApp, nats_client: Any) -> None:
    ws = await open_client(edge)
    await subscribe(ws, "prices")
    await nats_client.publish(S.price("ETH"), price("ETH", 2280))
    await recv_type(ws, "price_update")
    await ws.send(json.dumps({"type": "unsubscribe", "group": "prices"}))
    assert (await recv_type(ws, "unsubscribed"))["group"] == "prices"
    await nats_client.publish(S.price("ETH"), price("ETH", 2281))
    with pytest.raises(TimeoutError):
        await recv_type(ws, "price_update", timeout=0.7)
    await ws.close()


async def test_two_hundred_clients_each_receive_every_message_once_in_order(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    # all 200 come from 127.0.0.1, over the default per-address limit
    edge = await make_edge(limits=LimitsSettings(max_connections_per_ip=1000))
    clients = [await open_client(edge) for _ in range(200)]
    for ws in clients:
        await ws.send(json.dumps({"type": "subscribe", "group": "prices"}))
    await wait_for(lambda: len(list(edge.index.receivers(Group.PRICES, "BTC"))) == 200)
    for ws in clients:
        await recv_type(ws, "subscribed")
    count = 50
    for n in range(count):
        await nats_client.publish(S.price("BTC"), price("BTC", 40000 + n))

    async def collect(ws: ClientConnection) -> list[float]:
        seen: list[float] = []
        while len(seen) < count:
            msg = await recv_type(ws, "price_update", timeout=20)
            seen.append(msg["data"]["price"])
        return seen

    results = await asyncio.gather(*(collect(ws) for ws in clients))
    expected = [40000 + n for n in range(count)]
    assert all(r == expected for r in results)
    for ws in clients:
        with pytest.raises(TimeoutError):
            await recv_type(ws, "price_update", timeout=0.01)
    await asyncio.gather(*(ws.close() for ws in clients))


async def test_the_all_group_gets_every_group_once(edge: EdgeApp, nats_client: Any) -> None:
    ws = await open_client(edge)
    await subscribe(ws, "all")
    await subscribe(ws, "prices")
    await nats_client.publish(S.price("SOL"), price("SOL", 100))
    await nats_client.publish(
        S.news,
        b'{"type":"news","data":{"id":"1","title":"t","url":"u","source":"s"},"timestamp":"t"}',
    )
    await nats_client.publish(
        S.alert("large_move"),
        b'{"type":"alert","data":{"alert_type":"large_move","message":"m","severity":"warning"},"timestamp":"t"}',
    )
    kinds = [(await recv_json(ws))["type"] for _ in range(3)]
    assert sorted(kinds) == ["alert", "news", "price_update"]
    with pytest.raises(TimeoutError):
        await recv_type(ws, "price_update", timeout=0.5)
    await ws.close()


async def test_a_subscriber_gets_a_snapshot_of_the_group_at_once(
    edge: EdgeApp, nats_client: Any
) -> None:
    js = nats_client.jetstream()
    await js.publish(S.price("BTC"), price("BTC", 1))
    await js.publish(S.price("ETH"), price("ETH", 2))
    await js.publish(S.price("BTC"), price("BTC", 3))
    await wait_for(lambda: edge.history[Group.PRICES].last_seq == 3)
    ws = await open_client(edge)
    await ws.send(json.dumps({"type": "subscribe", "group": "prices", "symbols": ["BTC"]}))
    assert (await recv_type(ws, "subscribed"))["symbols"] == ["BTC"]
    snap = await recv_type(ws, "price_update", timeout=1)
    assert (snap["data"]["symbol"], snap["data"]["price"], snap["seq"]) == ("BTC", 3, 3)
    await js.publish(S.price("ETH"), price("ETH", 4))
    await js.publish(S.price("BTC"), price("BTC", 5))
    live = await recv_type(ws, "price_update")
    assert (live["data"]["symbol"], live["seq"]) == ("BTC", 5)
    await ws.close()


async def test_broadcast_reaches_its_group_and_all_reaches_everyone(
    edge: EdgeApp, nats_client: Any
) -> None:
    news = await open_client(edge)
    other = await open_client(edge)
    await subscribe(news, "news")
    await nats_client.publish(S.broadcast(Group.NEWS), b'{"type":"notification","text":"n"}')
    assert (await recv_type(news, "notification"))["text"] == "n"
    with pytest.raises(TimeoutError):
        await recv_type(other, "notification", timeout=0.5)
    await nats_client.publish(S.broadcast(Group.ALL), b'{"type":"notification","text":"everyone"}')
    for ws in (news, other):
        assert (await recv_type(ws, "notification"))["text"] == "everyone"
        await ws.close()


async def test_a_malformed_upstream_message_is_dropped_and_the_stream_goes_on(
    edge: EdgeApp, nats_client: Any
) -> None:
    ws = await open_client(edge)
    await subscribe(ws, "prices")
    await nats_client.publish(S.price("BTC"), b"{not json")
    await nats_client.publish(S.price("BTC"), b'["no", "type"]')
    await nats_client.publish(S.price("BTC"), price("BTC", 7))
    assert (await recv_type(ws, "price_update"))["data"]["price"] == 7
    await ws.close()


async def test_edge_reports_and_session_events_reach_nats(edge: EdgeApp, nats_client: Any) -> None:
    opened: asyncio.Queue[bytes] = asyncio.Queue()
    closed: asyncio.Queue[bytes] = asyncio.Queue()
    await nats_client.subscribe(S.session_opened, cb=partial(_put, opened))
    await nats_client.subscribe(S.session_closed, cb=partial(_put, closed))
    await nats_client.flush()
    ws = await open_client(edge)
    event = json.loads(await asyncio.wait_for(opened.get(), 5))
    assert event["edge_id"] == edge.edge_id
    assert event["client_type"] == "api"
    await ws.close()
    gone = json.loads(await asyncio.wait_for(closed.get(), 5))
    assert gone["session_id"] == event["session_id"]
    report = edge.report()
    assert report.total_sessions == 1
    assert report.active_connections == 0


async def _put(queue: asyncio.Queue[bytes], msg: Any) -> None:
    queue.put_nowait(msg.data)
