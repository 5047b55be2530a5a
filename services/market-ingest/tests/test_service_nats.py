"""The engine on a real nats-server, polling the simulator over real HTTP: prices, health and
news arrive on their subjects; the news stream drops a story published twice; a restart reads
the ids of recent stories back from the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from pricewire_common.httpserver import HttpServer
from pricewire_common.streams import StreamLimits, ensure_streams
from pricewire_common.testing import free_port
from pricewire_contracts import Group, PriceUpdate, ProviderHealth
from pricewire_ingest.catalog import Catalog
from pricewire_ingest.engine import IngestEngine
from pricewire_ingest.poller import HttpFetcher
from pricewire_ingest.service import NatsPublisher, collect_keys, recent_news_ids
from pricewire_ingest.settings import IngestSettings
from pricewire_ingest.simulator.server import create_app


@pytest.fixture
async def simulator_url(simulator: Any) -> AsyncIterator[str]:
    server = HttpServer(create_app(simulator), host="127.0.0.1", port=free_port(), graceful_s=1)
    await server.start()
    yield f"http://127.0.0.1:{server.port}"
    simulator.closing.set()
    await server.stop()


async def test_engine_publishes_prices_health_and_news_on_nats(
    nats_server: Any, nats_client: Any, simulator_url: str, catalog: Catalog
) -> None:
    settings = IngestSettings(
        nats_url=nats_server.url,
        provider_base_url_override=simulator_url,
        poll_interval_scale=0.02,
        initial_spread_s=1.0,
        request_timeout_s=3.0,
        price_tick_s=0.2,
    )
    subjects = settings.subjects
    js = nats_client.jetstream()
    await ensure_streams(js, subjects, StreamLimits(history_s=60))
    got: dict[str, list[Any]] = {"price": [], "health": [], "news": []}

    async def collect(msg: Any) -> None:
        kind = (
            "price"
            if ".price." in msg.subject
            else "health"
            if ".health." in msg.subject
            else "news"
        )
        got[kind].append(orjson.loads(msg.data))

    for subject in (subjects.price("BTC"), subjects.provider_health_all, subjects.news):
        await nats_client.subscribe(subject, cb=collect)
    fetcher = HttpFetcher()
    engine = IngestEngine(
        settings,
        catalog,
        fetcher=fetcher,
        publisher=NatsPublisher(nats_client),
        keys=collect_keys(catalog, {}, simulated=False),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        for _ in range(300):
            if (
                got["price"]
                and got["news"]
                and len({h["provider_id"] for h in got["health"]}) >= 100
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await fetcher.aclose()
    price = PriceUpdate.model_validate(got["price"][-1])
    assert price.data.symbol == "BTC" and price.data.sources >= 3 and not price.data.stale
    health = [ProviderHealth.model_validate(h) for h in got["health"]]
    assert len({h.provider_id for h in health}) >= 100
    assert {h.status for h in health} <= {"online", "disabled"}
    await nats_client.flush()
    stored = 0
    for _ in range(100):  # the stream and our subscription both settle on every story
        stored = (await js.stream_info(subjects.stream(Group.NEWS))).state.messages
        if stored == len(got["news"]):
            break
        await asyncio.sleep(0.05)
    ids = [n["data"]["id"] for n in got["news"]]
    assert len(ids) == len(set(ids))
    assert stored == len(ids)
    # a second publisher (another shard, a restarted ingest) repeats a story: the stream drops it
    await nats_client.publish(subjects.news, b"{}", headers={"Nats-Msg-Id": ids[0]})
    await nats_client.flush()
    assert (await js.stream_info(subjects.stream(Group.NEWS))).state.messages == stored
    assert sorted(await recent_news_ids(js, subjects)) == sorted(ids)


async def test_two_shards_on_nats_publish_one_consensus_of_both(
    nats_server: Any, nats_client: Any, simulator_url: str, catalog: Catalog
) -> None:
    from pricewire_ingest.service import _follow_other_shards

    def settings(index: int) -> IngestSettings:
        return IngestSettings(
            nats_url=nats_server.url,
            provider_base_url_override=simulator_url,
            simulated_keys=True,
            shard_index=index,
            shard_count=2,
            poll_interval_scale=0.05,
            initial_spread_s=0.5,
            price_tick_s=0.2,
        )

    prices: list[PriceUpdate] = []

    async def on_price(msg: Any) -> None:
        prices.append(PriceUpdate.model_validate(orjson.loads(msg.data)))

    await ensure_streams(nats_client.jetstream(), settings(0).subjects)  # as the service does
    await nats_client.subscribe(settings(0).subjects.price("BTC"), cb=on_price)
    fetcher = HttpFetcher()
    keys = collect_keys(catalog, {}, simulated=True)
    engines = [
        IngestEngine(
            settings(i), catalog, fetcher=fetcher, publisher=NatsPublisher(nats_client), keys=keys
        )
        for i in (0, 1)
    ]
    await _follow_other_shards(nats_client, settings(0), engines[0])
    shard1_btc = {
        pid
        for pid, st in engines[1].states.items()
        if st.provider.category in ("exchange", "market_data") and not st.disabled
    }
    stop = asyncio.Event()
    tasks = [asyncio.create_task(e.run(stop)) for e in engines]
    try:
        for _ in range(200):
            if prices and shard1_btc & {q.provider_id for q in engines[0].book.quotes("BTC")}:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
        await fetcher.aclose()
    assert prices
    assert shard1_btc & {q.provider_id for q in engines[0].book.quotes("BTC")}
    assert not engines[1].prices  # shard 1 never computes nor publishes a price
