"""The connection manager against the simulated venues: subscribe and ticks on all six
venues, and each fault mode (silent stall, abrupt disconnect, sequence gap, malformed frame,
close for too many requests, venue down), limits (streams per connection, message rate,
connection age) and application-level pings. Waits are bounded; nothing asserts a duration."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from pricewire_ingest.catalog import Catalog
from pricewire_ingest.simulator.venues import VenueServer
from pricewire_ingest.simulator.world import MarketWorld
from pricewire_ingest.streaming import PROTOCOLS, StreamTuning, Tick, VenueProtocol, VenueStream

FAST = StreamTuning(backoff_base_s=0.05, backoff_cap_s=0.2, open_timeout_s=5, offline_after_s=0.5)


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait (bounded) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def tuned(venue: str, **limits: Any) -> type[VenueProtocol]:
    """The venue's protocol with some limits changed (faster pings, fewer streams ...)."""
    cls = PROTOCOLS[venue]
    return type(f"Tuned{cls.__name__}", (cls,), {"limits": replace(cls.limits, **limits)})


class Harness:
    def __init__(self, server: VenueServer, stream: VenueStream) -> None:
        self.server = server
        self.stream = stream
        self.ticks: list[Tick] = []

    async def sink(self, tick: Tick) -> None:
        self.ticks.append(tick)

    def count(self) -> int:
        return len(self.ticks)

    async def more_ticks(self, n: int = 5) -> None:
        start = self.count()
        await until(lambda: self.count() >= start + n)


@contextlib.asynccontextmanager
async def running(
    catalog: Catalog,
    venue: str,
    *,
    protocol: type[VenueProtocol] | None = None,
    stall_s: float = 0.5,
    server_options: dict[str, Any] | None = None,
) -> AsyncIterator[Harness]:
    world = MarketWorld(catalog.assets, seed=3, start=time.time())
    server = await VenueServer(
        venue, world, catalog.assets, tick_interval_s=0.02, seed=3, **(server_options or {})
    ).start()
    harness = Harness(server, None)  # type: ignore[arg-type]
    stream = VenueStream(
        (protocol or PROTOCOLS[venue])(catalog.assets),
        server.url,
        harness.sink,
        stall_s=stall_s,
        tuning=FAST,
        rng=random.Random(1),
    )
    harness.stream = stream
    stop = asyncio.Event()
    task = asyncio.create_task(stream.run(stop))
    try:
        yield harness
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await server.stop()


@pytest.mark.parametrize("venue", sorted(PROTOCOLS))
async def test_every_venue_streams_every_symbol(catalog: Catalog, venue: str) -> None:
    async with running(catalog, venue) as h:
        symbols = set(h.stream.protocol.pairs.values())
        await until(lambda: {t.symbol for t in h.ticks} == symbols)
        await until(lambda: h.stream.status().state == "live")
        status = h.stream.status()
        assert status.reason is None and status.malformed == 0 and status.sequence_gaps == 0
        assert all(t.venue == venue and t.price > 0 for t in h.ticks)
        # the venue's price is the simulated market's, give or take the venue's offset
        last = {t.symbol: t.price for t in h.ticks}
        truth = h.server.world.truth(time.time())
        assert all(abs(last[s] / truth[s] - 1) < 0.01 for s in last)


async def test_silent_stall_reconnects_and_ticks_resume(catalog: Catalog) -> None:
    async with running(catalog, "coinbase") as h:
        await h.more_ticks()
        h.server.fault("stall")
        await until(lambda: h.stream.status().stalls >= 1)
        assert h.stream.status().reconnects >= 1  # counted together, when the stall is acted on
        await until(lambda: h.server.accepted >= 2)
        await h.more_ticks()
        status = h.stream.status()
        assert status.state == "live" and status.reconnects >= 1
        assert "stalled" in (status.last_fault or "")


async def test_abrupt_disconnect_reconnects(catalog: Catalog) -> None:
    async with running(catalog, "kraken") as h:
        await h.more_ticks()
        h.server.fault("disconnect")
        await until(lambda: h.stream.status().reconnects >= 1)
        await h.more_ticks()
        assert h.server.accepted >= 2
        assert h.stream.status().state == "live"


async def test_sequence_gap_is_counted_and_the_next_message_resynchronises(
    catalog: Catalog,
) -> None:
    async with running(catalog, "binance") as h:
        await h.more_ticks(30)
        h.server.fault("sequence_gap", gap=3)
        await until(lambda: h.stream.status().sequence_gaps >= 1)
        await h.more_ticks(50)  # every pair's next tick came: one gap each at most
        before = h.stream.status().sequence_gaps
        assert 1 <= before <= len(h.stream.protocol.pairs)
        await h.more_ticks(50)
        status = h.stream.status()
        # no reconnect was needed, and after the gap the numbers are in order again
        assert status.reconnects == 0 and status.sequence_gaps == before
        assert "sequence gap" in (status.last_fault or "")


async def test_malformed_frames_are_counted_and_never_a_price(catalog: Catalog) -> None:
    async with running(catalog, "okx") as h:
        await h.more_ticks()
        h.server.fault("malformed")
        await until(lambda: h.stream.status().malformed >= 2)  # the garbage and the zero price
        await h.more_ticks()
        assert all(t.price > 0 for t in h.ticks)
        assert h.stream.status().state == "live" and h.stream.status().reconnects == 0


async def test_close_for_too_many_requests_backs_off_and_resubscribes(catalog: Catalog) -> None:
    async with running(catalog, "bybit") as h:
        await h.more_ticks()
        h.server.fault("too_many_requests")
        await until(lambda: h.stream.status().reconnects >= 1)
        assert "rate limited" in (h.stream.status().last_fault or "")
        await h.more_ticks()
        assert h.server.accepted >= 2


async def test_venue_down_is_degraded_then_offline_then_back(catalog: Catalog) -> None:
    async with running(catalog, "bitstamp") as h:
        await h.more_ticks()
        h.server.fault("down", duration_s=60)
        await until(lambda: h.stream.status().state == "degraded")
        await until(lambda: h.server.refused >= 1)
        await until(lambda: h.stream.status().state == "offline")
        await until(lambda: "HTTP 503" in (h.stream.status().reason or ""))
        h.server.heal()
        await h.more_ticks()
        assert h.stream.status().state == "live"


async def test_pairs_are_split_over_connections(catalog: Catalog) -> None:
    async with running(catalog, "okx", protocol=tuned("okx", streams_per_connection=5)) as h:
        symbols = set(h.stream.protocol.pairs.values())
        await until(lambda: {t.symbol for t in h.ticks} == symbols)
        assert h.stream.status().connections == 3
        assert h.server.accepted == 3
        await until(lambda: h.stream.status().live_connections == 3)


async def test_subscribe_messages_respect_the_message_rate(catalog: Catalog) -> None:
    # one stream per SUBSCRIBE: 12 messages, and Binance closes a client sending over 5 per s
    protocol = tuned("binance", symbols_per_subscribe=1)
    async with running(catalog, "binance", protocol=protocol) as h:
        symbols = set(h.stream.protocol.pairs.values())
        await until(lambda: {t.symbol for t in h.ticks} == symbols)
        assert h.stream.status().reconnects == 0 and h.server.accepted == 1


@pytest.mark.parametrize("venue", ["kraken", "okx", "bybit", "bitstamp"])
async def test_application_pings_are_answered(catalog: Catalog, venue: str) -> None:
    protocol = tuned(venue, ping_interval_s=0.05)
    async with running(catalog, venue, protocol=protocol) as h:
        await until(lambda: h.stream.counts.messages > 0)
        from pricewire_ingest.streaming import metrics

        def pongs() -> float:
            return float(metrics.STREAM_MESSAGES.labels(venue, "heartbeat")._value.get())

        start = pongs()
        await until(lambda: pongs() >= start + 3)


async def test_connection_age_limit_rotates_without_backoff(catalog: Catalog) -> None:
    protocol = tuned("binance", max_connection_s=0.4)
    async with running(catalog, "binance", protocol=protocol) as h:
        await until(lambda: h.server.accepted >= 2)
        await h.more_ticks()
        assert h.stream.status().last_fault is None  # a rotation is not a fault


async def test_venue_closing_old_connections_is_survived(catalog: Catalog) -> None:
    async with running(catalog, "coinbase", server_options={"max_connection_s": 0.3}) as h:
        await until(lambda: h.server.accepted >= 2)
        await h.more_ticks()


async def test_nothing_listening_is_offline_with_a_reason(catalog: Catalog) -> None:
    stream = VenueStream(
        PROTOCOLS["okx"](catalog.assets),
        "ws://127.0.0.1:9",
        lambda tick: asyncio.sleep(0),
        tuning=FAST,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(stream.run(stop))
    try:
        await until(lambda: stream.status().reconnects >= 2)
        await until(lambda: stream.status().state == "offline")
        assert "cannot connect" in (stream.status().reason or "")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
