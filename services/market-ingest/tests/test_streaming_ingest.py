"""Streamed ticks into the engine, without sockets: the raw tick subject, the venue's vote in
the consensus (the same upstream as its REST adapter), price updates at most once per
``price_min_interval_s`` and carrying the freshest input's time, stream health for
``provider_stats``, the settings and the dev launcher's wiring."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest

from pricewire_contracts import PriceUpdate, ProviderHealth, StreamTick, SubjectCatalog
from pricewire_ingest.app import create_app
from pricewire_ingest.catalog import Catalog
from pricewire_ingest.engine import IngestEngine, MemoryPublisher
from pricewire_ingest.quotes import PriceQuote
from pricewire_ingest.settings import IngestSettings
from pricewire_ingest.streaming import VENUES, Tick
from pricewire_ingest.streaming.ingest import StreamIngest, stream_provider_id

SUBJECTS = SubjectCatalog()


class NoFetch:
    async def fetch(self, spec: Any, *, timeout_s: float) -> Any:
        raise AssertionError("no poll in these tests")


def make(catalog: Catalog, **settings: Any) -> tuple[IngestEngine, StreamIngest, MemoryPublisher]:
    s = IngestSettings(stream_enabled=True, consensus_min_sources=2, **settings)
    publisher = MemoryPublisher()
    engine = IngestEngine(s, catalog, fetcher=NoFetch(), publisher=publisher, keys={})
    return engine, StreamIngest(engine, s, catalog), publisher


def messages(publisher: MemoryPublisher, subject: str) -> list[dict[str, Any]]:
    return [orjson.loads(p) for s, p, _ in publisher.messages if s == subject]


def tick(venue: str, price: float, at: float, **extra: Any) -> Tick:
    pair = {"binance": "BTCUSDT", "kraken": "BTC/USD", "okx": "BTC-USDT"}[venue]
    return Tick(venue, "BTC", pair, price, received_at=at, exchange_ts=at - 0.01, **extra)


async def until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_tick_goes_out_raw_and_votes_as_its_upstream(catalog: Catalog) -> None:
    engine, streams, pub = make(catalog)
    now = time.time()
    # the REST poll of the same upstream knew the volume and change
    engine.book.add(
        [PriceQuote("BTC", 100.0, "binance_public", now - 5, 1.5, None, 2e9, upstream="binance")]
    )
    await streams.on_tick(tick("binance", 101.0, now, sequence=7))
    (raw,) = messages(pub, SUBJECTS.tick("binance", "BTC"))
    event = StreamTick.model_validate(raw)
    assert (event.venue, event.symbol, event.price, event.sequence) == ("binance", "BTC", 101.0, 7)
    quote = next(q for q in engine.book.quotes("BTC") if q.provider_id == "binance_stream")
    assert quote.upstream == "binance" and quote.price == 101.0
    assert quote.volume_24h == 2e9 and quote.change_24h == 1.5  # carried over from REST
    assert quote.observed_at == pytest.approx(now - 0.01)


async def test_the_stream_and_the_rest_poll_are_one_vote(catalog: Catalog) -> None:
    engine, streams, pub = make(catalog)
    now = time.time()
    engine.book.add(
        [
            PriceQuote("BTC", 99.0, "binance_public", now - 3, upstream="binance"),
            PriceQuote("BTC", 100.2, "kraken", now - 3, upstream="kraken"),
        ]
    )
    await streams.on_tick(tick("binance", 100.1, now))
    (update,) = [PriceUpdate.model_validate(m) for m in messages(pub, SUBJECTS.price("BTC"))]
    assert update.data.venues == ["binance", "kraken"] and update.data.sources == 2
    # the freshest quote of the upstream votes: the tick's price, the tick's time
    assert 100.1 <= update.data.price <= 100.2  # not the REST poll's 99.0
    assert update.data.updated_at == pytest.approx(now - 0.01, abs=1e-3)


async def test_price_updates_at_most_once_per_interval_and_the_last_tick_wins(
    catalog: Catalog,
) -> None:
    engine, streams, pub = make(catalog, price_min_interval_s=0.2)
    now = time.time()
    engine.book.add(
        [
            PriceQuote("BTC", 99.9, "kraken", now, upstream="kraken"),
            PriceQuote("BTC", 100.4, "coinbase_exchange", now, upstream="coinbase"),
        ]
    )
    for i in range(20):  # a burst of ticks inside one interval: binance is the median vote
        await streams.on_tick(tick("binance", 100.0 + i * 0.01, time.time()))
    assert len(messages(pub, SUBJECTS.price("BTC"))) == 1
    # the end of the interval publishes the consensus with the burst's last tick
    await until(lambda: len(messages(pub, SUBJECTS.price("BTC"))) == 2)
    last = PriceUpdate.model_validate(messages(pub, SUBJECTS.price("BTC"))[-1])
    assert last.data.price == pytest.approx(100.19)  # the burst's last tick
    assert len(messages(pub, SUBJECTS.tick("binance", "BTC"))) == 20  # every tick, raw


async def test_an_unchanged_price_is_not_published_again(catalog: Catalog) -> None:
    engine, streams, pub = make(catalog, price_min_interval_s=0.05)
    now = time.time()
    engine.book.add([PriceQuote("BTC", 100.0, "kraken", now, upstream="kraken")])
    await streams.on_tick(tick("binance", 100.0, now))
    await asyncio.sleep(0.1)
    await streams.on_tick(tick("binance", 100.0, time.time()))
    await asyncio.sleep(0.1)
    assert len(messages(pub, SUBJECTS.price("BTC"))) == 1


async def test_stream_health_for_provider_stats(catalog: Catalog) -> None:
    _, streams, pub = make(catalog)
    await streams.publish_health(force=True)
    for venue in VENUES:
        (raw,) = messages(pub, SUBJECTS.provider_health(stream_provider_id(venue)))
        health = ProviderHealth.model_validate(raw)
        assert health.stream is not None and health.upstream == venue
        assert health.stream.state in ("degraded", "offline")
        assert health.stream.reason == "not connected yet"
        assert health.feeds == ["prices"]
    # unchanged: not published again until forced
    count = len(pub.messages)
    await streams.publish_health()
    assert len(pub.messages) == count


async def test_the_engines_providers_endpoint_lists_the_streams(catalog: Catalog) -> None:
    engine, _, _ = make(catalog)
    app = create_app(engine=lambda: engine, ready=lambda: True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        rows = (await client.get("/providers")).json()
    streams = {r["provider_id"]: r for r in rows if r["provider_id"].endswith("_stream")}
    assert set(streams) == {stream_provider_id(venue) for venue in VENUES}
    for venue in VENUES:
        row = streams[stream_provider_id(venue)]
        assert row["upstream"] == venue and row["feeds"] == ["prices"]
        assert row["stream"]["state"] in ("degraded", "offline")


def test_stream_settings_resolve_the_urls() -> None:
    default = IngestSettings()
    assert not default.stream_enabled  # opt in (the dev launcher turns it on)
    assert set(default.stream_url_for) == set(VENUES)
    assert all(url == "" for url in default.stream_url_for.values())  # public endpoints
    simulated = IngestSettings(
        stream_base_url_override="ws://127.0.0.1:9000/",
        stream_urls={"okx": "ws://elsewhere/okx"},
        stream_venues=["binance", "okx"],
    )
    assert simulated.stream_url_for == {
        "binance": "ws://127.0.0.1:9000/binance",
        "okx": "ws://elsewhere/okx",
    }
    with pytest.raises(ValueError, match="stream_venues"):
        IngestSettings(stream_venues=["mtgox"])


def test_streams_use_the_public_endpoints_unless_overridden(catalog: Catalog) -> None:
    _, streams, _ = make(catalog)
    urls = {v: s.url for v, s in streams.manager.streams.items()}
    assert urls["binance"] == "wss://stream.binance.com:9443/stream"
    assert urls["kraken"] == "wss://ws.kraken.com/v2"
    assert urls["okx"] == "wss://ws.okx.com:8443/ws/v5/public"
    assert urls["bybit"] == "wss://stream.bybit.com/v5/public/spot"
    assert urls["coinbase"] == "wss://ws-feed.exchange.coinbase.com"
    assert urls["bitstamp"] == "wss://ws.bitstamp.net"


@pytest.mark.parametrize("providers", ["simulated", "live"])
def test_the_dev_launcher_streams_from_the_simulated_or_the_real_venues(providers: Any) -> None:
    from pricewire_dev.plan import SERVICES, SIMULATOR_VENUES, plan_services

    ports = {s.name: 8100 + s.port_offset for s in SERVICES} | {SIMULATOR_VENUES: 8106}
    started, _ = plan_services(
        providers=providers,
        ports=ports,
        nats_url="nats://127.0.0.1:4222",
        log_file="/tmp/x.log",
        runnable=lambda module: True,
    )
    ingest = next(p for p in started if p.name == "market-ingest")
    assert ingest.env["PRICEWIRE_STREAM_ENABLED"] == "true"
    if providers == "simulated":
        assert ingest.env["PRICEWIRE_STREAM_BASE_URL_OVERRIDE"] == "ws://127.0.0.1:8106"
        simulator = next(p for p in started if p.name == "simulator")
        assert simulator.env["PRICEWIRE_SIM_VENUES_PORT"] == "8106"
    else:
        assert "PRICEWIRE_STREAM_BASE_URL_OVERRIDE" not in ingest.env
