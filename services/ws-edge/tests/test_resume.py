"""Never miss an update: seq, resume after an abrupt drop (same edge or another), filters."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from pricewire_common.encoding import dumps
from pricewire_contracts import PriceData, PriceUpdate, SubjectCatalog

from .conftest import EdgeFactory, open_client, open_session, recv_json, recv_type, wait_for

S = SubjectCatalog()


@contextlib.asynccontextmanager
async def price_feed(
    nats_client: Any, symbols: tuple[str, ...] = ("BTC", "ETH"), hz: float = 60
) -> AsyncIterator[None]:
    async def run() -> None:
        n = 0
        while True:
            for symbol in symbols:
                n += 1
                body = PriceUpdate(data=PriceData(symbol=symbol, price=100 + n))
                await nats_client.publish(S.price(symbol), dumps(body))
            await asyncio.sleep(1 / hz)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def collect_prices(
    ws: ClientConnection, into: list[tuple[int, str]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            msg = await recv_json(ws, timeout=0.2)
        except TimeoutError:
            continue
        if msg["type"] == "price_update":
            into.append((msg["seq"], msg["data"]["symbol"]))


async def test_a_client_dropped_abruptly_resumes_with_exactly_what_it_missed(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    await _resume_scenario(make_edge, nats_client, second_edge=False)


async def test_a_client_resumes_on_another_edge_when_its_edge_is_gone(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    await _resume_scenario(make_edge, nats_client, second_edge=True)


async def test_per_symbol_filter_holds_for_live_and_replayed_messages(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    await _resume_scenario(make_edge, nats_client, second_edge=False, symbols=["ETH"])


async def test_resume_of_two_groups_is_gapless_while_tiny_rings_turn_over(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    """Rings of 3 messages turn over every few ms while the replay of one group awaits JetStream
    and then the other's: every missed seq of both arrives once, in order, then live, no gap."""
    edge = await make_edge(history_messages=3)
    watcher = await open_client(edge)
    client, welcome = await open_session(edge)
    for ws in (watcher, client):
        for group in ("prices", "market"):
            await ws.send(json.dumps({"type": "subscribe", "group": group}))
            await recv_type(ws, "subscribed")
    watched: list[tuple[str, int]] = []
    got: list[tuple[str, int]] = []
    stop = asyncio.Event()

    async def collect(ws: ClientConnection, into: list[tuple[str, int]]) -> None:
        while not stop.is_set():
            try:
                msg = await recv_json(ws, timeout=0.2)
            except TimeoutError:
                continue
            if msg["type"] in ("price_update", "market_update"):
                into.append((msg["type"], msg["seq"]))

    async def feed() -> None:
        js = nats_client.jetstream()
        n = 0
        while True:
            n += 1
            body = PriceUpdate(data=PriceData(symbol="BTC", price=100 + n))
            await nats_client.publish(S.price("BTC"), dumps(body))
            await js.publish(S.market, b'{"type":"market_update","data":{},"timestamp":"t"}')
            await asyncio.sleep(1 / 200)

    watching = asyncio.create_task(collect(watcher, watched))
    listening = asyncio.create_task(collect(client, got))
    feeding = asyncio.create_task(feed())
    try:
        await asyncio.sleep(1.0)
        listening.cancel()
        last = {kind: max(seq for k, seq in got if k == kind) for kind, _ in got}
        client.transport.abort()
        await client.wait_closed()
        await asyncio.sleep(1.0)
        again = await open_client(edge)
        request = {
            "type": "resume",
            "session_id": welcome["session_id"],
            "resume_token": welcome["resume_token"],
            "last_seq": {"prices": last["price_update"], "market": last["market_update"]},
        }
        await again.send(json.dumps(request))
        after: list[tuple[str, int]] = []
        while True:
            msg = await recv_json(again)
            if msg["type"] in ("price_update", "market_update"):
                after.append((msg["type"], msg["seq"]))
            elif msg["type"] == "resumed":
                break
            else:
                assert msg["type"] in ("stats_update", "heartbeat", "provider_stats"), msg
        resumed_live = asyncio.create_task(collect(again, after))
        await asyncio.sleep(1.0)
    finally:
        feeding.cancel()
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(watching, resumed_live)
    for kind in ("price_update", "market_update"):
        mine = [seq for k, seq in after if k == kind]
        theirs = [seq for k, seq in watched if k == kind and last[kind] < seq <= mine[-1]]
        assert mine == theirs, kind  # every missed seq once, in order, and live without a gap
    await again.close()
    await watcher.close()


async def _resume_scenario(
    make_edge: EdgeFactory,
    nats_client: Any,
    *,
    second_edge: bool,
    symbols: list[str] | None = None,
) -> None:
    first = await make_edge()
    other = await make_edge() if second_edge else first
    watcher = await open_client(other)
    client, welcome = await open_session(first)
    sub: dict[str, Any] = {"type": "subscribe", "group": "prices"}
    if symbols:
        sub["symbols"] = symbols
    for ws in (watcher, client):
        await ws.send(json.dumps(sub))
        await recv_type(ws, "subscribed")
    watched: list[tuple[int, str]] = []
    before: list[tuple[int, str]] = []
    stop_watch, stop_before = asyncio.Event(), asyncio.Event()
    async with price_feed(nats_client):
        watching = asyncio.create_task(collect_prices(watcher, watched, stop_watch))
        listening = asyncio.create_task(collect_prices(client, before, stop_before))
        await asyncio.sleep(1.0)
        stop_before.set()
        await listening
        session_id, token = welcome["session_id"], welcome["resume_token"]
        client.transport.abort()  # TCP reset, no close frame
        await client.wait_closed()
        if second_edge:
            await first.stop()
        await asyncio.sleep(2.0)  # prices keep flowing while the client is away
        last_seq = before[-1][0]
        again = await open_client(other)
        await again.send(
            json.dumps(
                {
                    "type": "resume",
                    "session_id": session_id,
                    "resume_token": token,
                    "last_seq": {"prices": last_seq},
                }
            )
        )
        after: list[tuple[int, str]] = []
        while True:
            msg = await recv_json(again)
            if msg["type"] == "price_update":
                after.append((msg["seq"], msg["data"]["symbol"]))
            elif msg["type"] == "resumed":
                assert msg["session_id"] == session_id
                assert msg["resume_token"] not in (None, token)  # rotated
                break
            else:
                assert msg["type"] in ("stats_update", "heartbeat"), msg
        stop_after = asyncio.Event()
        live = asyncio.create_task(collect_prices(again, after, stop_after))
        await asyncio.sleep(1.0)
    await asyncio.sleep(0.5)  # let the last published messages arrive everywhere
    stop_after.set()
    stop_watch.set()
    await asyncio.gather(live, watching)
    # the watcher saw everything; the client must have seen the same, without gap or duplicate
    expected = [item for item in watched if item[0] > last_seq and item[0] <= after[-1][0]]
    assert after == expected
    assert len(after) == len(set(after))
    assert before + after == [item for item in watched if item[0] <= after[-1][0]]
    if symbols:
        assert {symbol for _, symbol in before + after} == set(symbols)
    for ws in (watcher, again):
        await ws.close()


async def test_resume_of_an_unknown_session_fails_and_sends_snapshots(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    edge = await make_edge()
    await nats_client.jetstream().publish(
        S.price("BTC"), dumps(PriceUpdate(data=PriceData(symbol="BTC", price=5)))
    )
    ws = await open_client(edge)
    await ws.send(json.dumps({"type": "resume", "session_id": "nope", "last_seq": {"prices": 0}}))
    failed = await recv_type(ws, "resume_failed")
    assert failed["reason"] == "unknown_session"
    snap = await recv_type(ws, "price_update", timeout=2)
    assert snap["data"]["symbol"] == "BTC"
    await ws.close()


async def test_a_client_that_never_reads_does_not_slow_the_others_and_stays_bounded(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    edge = await make_edge(slow_client_timeout_s=60)
    stuck = await open_client(edge, max_queue=1)
    stuck.transport.pause_reading()  # never reads: its socket buffers fill up
    fast = await open_client(edge)
    for ws in (stuck, fast):
        await ws.send(json.dumps({"type": "subscribe", "group": "prices"}))
    await recv_type(fast, "subscribed")
    big = "x" * 4000
    count = 4000  # ~16 MB: more than loopback socket buffers absorb
    for n in range(count):
        body = PriceUpdate(data=PriceData(symbol=f"S{n % 20}", price=1 + n), note=big)  # type: ignore[call-arg]
        await nats_client.publish(S.price(f"S{n % 20}"), dumps(body))
    try:
        # the fast reader gets through to the newest update (conflated or not: it shares this
        # test's event loop) while the stuck one holds at most one pending value per symbol
        newest = 0
        while newest < count:
            msg = await recv_json(fast, timeout=30)
            if msg["type"] == "price_update":
                newest = msg["seq"]
        conns = [c for c in edge.connections if c.paused]
        assert len(conns) == 1
        slow = conns[0]
        assert len(slow.latest) <= 20  # one pending value per symbol, however many arrived
        assert slow.replaced > 0
        stuck.transport.resume_reading()
        notice = await recv_type(stuck, "conflated", timeout=30)
        assert notice["replaced"] > 0
    finally:
        await fast.close()
        stuck.transport.abort()
        await stuck.wait_closed()


@pytest.mark.parametrize("rate", [2.0])
async def test_max_rate_hz_caps_updates_per_symbol(
    make_edge: EdgeFactory, nats_client: Any, rate: float
) -> None:
    edge = await make_edge()
    ws = await open_client(edge)
    await ws.send(
        json.dumps(
            {"type": "subscribe", "group": "prices", "symbols": ["BTC"], "max_rate_hz": rate}
        )
    )
    await recv_type(ws, "subscribed")
    seen: list[float] = []
    async with price_feed(nats_client, ("BTC",), hz=50):
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.0
        while loop.time() < end:
            try:
                msg = await recv_json(ws, timeout=0.2)
            except TimeoutError:
                continue
            if msg["type"] == "price_update":
                seen.append(msg["data"]["price"])
    # about 2 s * 2 Hz (+1 for the first one), far below the 100 published
    assert 2 <= len(seen) <= 7
    assert seen == sorted(seen)  # always the newest value, never an older one
    await ws.close()


async def test_a_client_stuck_past_the_limit_is_disconnected(
    make_edge: EdgeFactory, nats_client: Any
) -> None:
    edge = await make_edge(slow_client_timeout_s=1.0)
    stuck = await open_client(edge, max_queue=1)
    stuck.transport.pause_reading()
    await stuck.send(json.dumps({"type": "subscribe", "group": "prices"}))
    body = "x" * 4000
    for n in range(4000):
        msg = PriceUpdate(data=PriceData(symbol="BTC", price=1 + n), note=body)  # type: ignore[call-arg]
        await nats_client.publish(S.price("BTC"), dumps(msg))
    # closed (4009), then aborted close_grace_s later: it never read, so the Close frame never
    # left the edge's buffer (test_a_stuck_client_is_closed_with_4009_and_receives_that_code)
    await wait_for(lambda: not edge.connections, timeout=20)
    stuck.transport.resume_reading()
    with pytest.raises(ConnectionClosed):
        while True:
            await recv_json(stuck, timeout=30)
    assert stuck.close_code == 1006
