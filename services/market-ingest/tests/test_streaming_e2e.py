"""Streaming ingest end to end: the simulator serving the six venues' WebSocket feeds (and the
REST providers), a real nats-server, market-ingest and ws-edge as processes (the code path of
``make demo``), and a WebSocket client of the edge. Every fault mode of the simulated venues is
injected in turn; after each, prices keep reaching the client (from the stream, or from the
venue's REST adapter while its stream is down) and the venue's stream health says what
happened. Waits are bounded; nothing asserts a duration."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
import urllib.request
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pricewire_common.testing import NatsServer, ServiceProcess, free_port
from pricewire_contracts import PriceUpdate, ProviderHealth, StreamTick, SubjectCatalog
from pricewire_ingest.streaming import VENUES

SUBJECTS = SubjectCatalog("pricewire")

pytestmark = pytest.mark.slow


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Awaitable[ServiceProcess]]]:
    started: list[ServiceProcess] = []

    async def run(module: str, name: str, env: dict[str, str]) -> ServiceProcess:
        proc = ServiceProcess(module, env=env, log_file=tmp_path / f"{name}.log")
        started.append(proc)
        return await asyncio.to_thread(proc.start, timeout_s=60)

    yield run
    for proc in reversed(started):
        proc.stop()


def _post(url: str, body: Any) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


class Observed:
    def __init__(self) -> None:
        self.ticks: dict[str, list[StreamTick]] = defaultdict(list)
        self.health: dict[str, ProviderHealth] = {}
        self.edge_prices: list[PriceUpdate] = []

    async def subscribe(self, nc: Any) -> None:
        async def on_tick(msg: Any) -> None:
            tick = StreamTick.model_validate_json(msg.data)
            assert msg.subject == SUBJECTS.tick(tick.venue, tick.symbol)
            self.ticks[tick.venue].append(tick)

        async def on_health(msg: Any) -> None:
            health = ProviderHealth.model_validate_json(msg.data)
            self.health[health.provider_id] = health

        await nc.subscribe(SUBJECTS.ticks, cb=on_tick)
        await nc.subscribe(SUBJECTS.provider_health_all, cb=on_health)
        await nc.flush()

    def stream(self, venue: str) -> Any:
        health = self.health.get(f"{venue}_stream")
        return health.stream if health is not None else None

    def state(self, venue: str) -> str | None:
        stream = self.stream(venue)
        return stream.state if stream is not None else None


def _seen(observed: Observed, venue: str, happened: Callable[[Any], bool]) -> bool:
    stream = observed.stream(venue)
    return stream is not None and happened(stream)


def _live(observed: Observed, venue: str) -> bool:
    return observed.state(venue) == "live"


@contextlib.asynccontextmanager
async def edge_client(url: str, observed: Observed) -> AsyncIterator[None]:
    from websockets.asyncio.client import connect

    async with connect(url) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert welcome["type"] == "welcome"
        await ws.send(json.dumps({"type": "subscribe", "group": "prices"}))

        async def read() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "price_update" and message["data"]["symbol"] == "BTC":
                    observed.edge_prices.append(PriceUpdate.model_validate(message))

        reader = asyncio.create_task(read())
        try:
            yield
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def test_prices_keep_flowing_through_every_venue_fault(
    nats_server: NatsServer, nats_client: Any, start: Callable[..., Awaitable[ServiceProcess]]
) -> None:
    observed = Observed()
    await observed.subscribe(nats_client)
    venues_port = free_port()
    simulator = await start(
        "pricewire_ingest.simulator",
        "simulator",
        {
            "PRICEWIRE_SIM_SEED": "17",
            "PRICEWIRE_SIM_VENUES_PORT": str(venues_port),
            "PRICEWIRE_SIM_VENUE_TICK_S": "0.1",
            "PRICEWIRE_SIM_JUMP_INTERVAL_S": "0",
        },
    )
    edge = await start(
        "pricewire_edge",
        "edge",
        {"PRICEWIRE_NATS_URL": nats_server.url, "PRICEWIRE_DRAIN_WINDOW_S": "0.5"},
    )
    await start(
        "pricewire_ingest",
        "ingest",
        {
            "PRICEWIRE_NATS_URL": nats_server.url,
            "PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE": simulator.url(),
            "PRICEWIRE_SIMULATED_KEYS": "true",
            "PRICEWIRE_POLL_INTERVAL_SCALE": "0.1",
            "PRICEWIRE_INITIAL_SPREAD_S": "1",
            "PRICEWIRE_REQUEST_TIMEOUT_S": "4",
            "PRICEWIRE_PRICE_TICK_S": "0.5",
            "PRICEWIRE_INSTANCE_ID": "ingest-streaming-e2e",
            "PRICEWIRE_STREAM_ENABLED": "true",
            "PRICEWIRE_STREAM_BASE_URL_OVERRIDE": f"ws://127.0.0.1:{venues_port}",
            "PRICEWIRE_STREAM_STALL_S": json.dumps(dict.fromkeys(VENUES, 1.5)),
            "PRICEWIRE_STREAM_BACKOFF_BASE_S": "0.1",
            "PRICEWIRE_STREAM_BACKOFF_MAX_S": "0.5",
            "PRICEWIRE_STREAM_OFFLINE_AFTER_S": "2",
            "PRICEWIRE_STREAM_HEALTH_S": "0.5",
        },
    )
    faults = simulator.url("/_venues/faults")
    async with edge_client(edge.url("/ws", scheme="ws"), observed):
        await until(lambda: set(observed.ticks) == set(VENUES), 30, "ticks from every venue")
        await until(
            lambda: all(observed.state(v) == "live" for v in VENUES), 30, "every stream live"
        )
        await until(
            lambda: any(set(VENUES) <= set(p.data.venues) for p in observed.edge_prices),
            30,
            "a BTC price at the edge with every streamed venue's vote",
        )
        for tick in observed.ticks["binance"][:50]:
            assert tick.price > 0 and tick.symbol in {
                "BTC",
                "ETH",
                "BNB",
                "SOL",
                "XRP",
                "ADA",
                "DOGE",
                "TRX",
                "DOT",
                "LTC",
                "AVAX",
                "LINK",
            }

        async def prices_keep_flowing(what: str) -> None:
            seen = len(observed.edge_prices)
            await until(lambda: len(observed.edge_prices) >= seen + 3, 20, f"prices after {what}")

        checks: list[tuple[str, dict[str, Any], Callable[[Any], bool]]] = [
            ("binance", {"mode": "stall"}, lambda s: s.stalls >= 1),
            ("coinbase", {"mode": "disconnect"}, lambda s: s.reconnects >= 1),
            ("binance", {"mode": "sequence_gap", "gap": 3}, lambda s: s.sequence_gaps >= 1),
            ("okx", {"mode": "malformed"}, lambda s: s.malformed >= 1),
            (
                "bybit",
                {"mode": "too_many_requests"},
                lambda s: "rate limited" in (s.last_fault or ""),
            ),
        ]
        for venue, fault, happened in checks:
            _post(faults, {venue: fault})
            await until(functools.partial(_seen, observed, venue, happened), 20, f"{venue} {fault}")
            await prices_keep_flowing(f"{venue} {fault['mode']}")
            await until(functools.partial(_live, observed, venue), 20, f"{venue} live again")

        # a venue down for a minute: its stream is degraded, then offline with the reason,
        # while its REST adapter keeps its vote in the consensus
        _post(faults, {"kraken": {"mode": "down", "duration_s": 60}})
        await until(lambda: observed.state("kraken") == "offline", 20, "kraken offline")
        await until(
            lambda: "HTTP 503" in (observed.stream("kraken").reason or ""), 20, "kraken's reason"
        )
        seen = len(observed.edge_prices)
        await until(
            lambda: any("kraken" in p.data.venues for p in observed.edge_prices[seen:]),
            30,
            "kraken's REST quote voting while its stream is down",
        )
        await prices_keep_flowing("kraken down")
        _post(faults, {"kraken": None})
        await until(lambda: observed.state("kraken") == "live", 20, "kraken back")

    # never a price that is not finite and positive, on the ticks or at the edge
    assert all(t.price > 0 for ticks in observed.ticks.values() for t in ticks)
    assert all(p.data.price > 0 for p in observed.edge_prices)
