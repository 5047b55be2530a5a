"""The engine without NATS or sockets: polls against an in-process simulator, publishes into a
list. Health after every poll, breaker and rate-limit handling, consensus, news, market."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from pricewire_contracts import (
    AlertMessage,
    MarketUpdate,
    NewsMessage,
    PriceUpdate,
    ProviderHealth,
    ProviderQuotes,
)
from pricewire_ingest.catalog import Catalog, disabled_reason
from pricewire_ingest.engine import IngestEngine, MemoryPublisher
from pricewire_ingest.errors import NetworkError
from pricewire_ingest.quotes import PriceQuote
from pricewire_ingest.service import collect_keys
from pricewire_ingest.settings import IngestSettings
from pricewire_ingest.simulator.faults import Fault

OVERRIDE = "http://sim"


def make_engine(
    catalog: Catalog,
    fetcher: Any,
    *,
    keys: bool = True,
    override: str | None = OVERRIDE,
    **settings: Any,
) -> tuple[IngestEngine, MemoryPublisher]:
    s = IngestSettings(provider_base_url_override=override, **settings)
    publisher = MemoryPublisher()
    engine = IngestEngine(
        s,
        catalog,
        fetcher=fetcher,
        publisher=publisher,
        keys=collect_keys(catalog, {}, simulated=keys),
    )
    return engine, publisher


def published(publisher: MemoryPublisher, fragment: str) -> list[dict[str, Any]]:
    return [orjson.loads(p) for subject, p, _ in publisher.messages if fragment in subject]


def price_providers(catalog: Catalog) -> list[str]:
    return [
        p.id
        for p in catalog.providers
        if p.category in ("exchange", "market_data") and not p.inactive and p.family != "http_probe"
    ]


async def test_each_poll_publishes_the_providers_health(catalog: Catalog, sim_fetcher: Any) -> None:
    engine, pub = make_engine(catalog, sim_fetcher)
    report = await engine.poll("kraken")
    assert report.outcome == "ok"
    (health,) = [ProviderHealth.model_validate(h) for h in published(pub, "provider.health.kraken")]
    assert (health.status, health.breaker, health.success_rate, health.window_polls) == (
        "online",
        "closed",
        100.0,
        1,
    )
    assert health.latency_ms is not None
    assert health.category == "exchange"


async def test_consensus_of_many_providers_is_published_as_the_guides_price_update(
    catalog: Catalog, sim_fetcher: Any, simulator: Any
) -> None:
    engine, pub = make_engine(catalog, sim_fetcher)
    for pid in price_providers(catalog):
        await engine.poll(pid)
    await engine.publish_prices()
    (btc,) = [PriceUpdate.model_validate(m) for m in published(pub, "price.BTC")]
    truth = simulator.world.price("BTC", simulator.clock())
    assert btc.data.symbol == "BTC"
    assert btc.data.price == pytest.approx(truth, rel=0.005)
    assert btc.data.sources >= 15
    assert not btc.data.stale
    assert btc.data.change_24h is not None
    assert {m["data"]["symbol"] for m in published(pub, ".price.")} == set(catalog.symbols)
    for update in (PriceUpdate.model_validate(m) for m in published(pub, ".price.")):
        data = update.data
        assert data.venues == sorted(set(data.venues)), data.venues  # sorted, each once
        assert data.sources == len(data.venues)
        assert data.confidence is not None and 0 <= data.confidence <= data.price
        assert data.confidence_pct is not None and data.confidence_pct < 1.0


async def test_mirrors_of_one_upstream_are_one_vote(catalog: Catalog, sim_fetcher: Any) -> None:
    engine, pub = make_engine(catalog, sim_fetcher)
    binance = [p.id for p in catalog.providers if p.upstream == "binance" and not p.inactive]
    coingecko = [
        pid for pid in price_providers(catalog) if catalog.provider(pid).upstream == "coingecko"
    ]
    assert len(binance) >= 2 and len(coingecko) >= 2
    for pid in binance + coingecko:
        assert (await engine.poll(pid)).outcome == "ok", pid
    assert len({q.provider_id for q in engine.book.quotes("BTC")}) >= 4
    await engine.publish_prices()
    (btc,) = [PriceUpdate.model_validate(m) for m in published(pub, "price.BTC")]
    assert (btc.data.venues, btc.data.sources, btc.data.stale) == (
        ["binance", "coingecko"],
        2,
        True,
    )
    # binance alone, through all its entries: one vote, stale
    alone, pub2 = make_engine(catalog, sim_fetcher)
    for pid in binance:
        await alone.poll(pid)
    await alone.publish_prices()
    (only,) = [PriceUpdate.model_validate(m) for m in published(pub2, "price.BTC")]
    assert (only.data.venues, only.data.sources, only.data.stale) == (["binance"], 1, True)
    assert only.data.confidence is not None and 0 < only.data.confidence < only.data.price


async def test_health_names_the_upstream_and_marks_mirrors(
    catalog: Catalog, sim_fetcher: Any
) -> None:
    engine, pub = make_engine(catalog, sim_fetcher)
    await engine.poll("binance_public")
    await engine.poll("binance_vision")
    (primary,) = [ProviderHealth.model_validate(h) for h in published(pub, "health.binance_public")]
    (mirror,) = [ProviderHealth.model_validate(h) for h in published(pub, "health.binance_vision")]
    assert (primary.upstream, primary.mirror) == ("binance", False)
    assert (mirror.upstream, mirror.mirror) == ("binance", True)


async def test_dislocated_upstreams_raise_and_clear_a_dislocation_alert(
    catalog: Catalog, sim_fetcher: Any, simulator: Any
) -> None:
    engine, pub = make_engine(
        catalog, sim_fetcher, alert_dislocation_pct=0.5, alert_dislocation_clear_pct=0.25
    )
    now = engine.wall()
    quotes = [
        PriceQuote("BTC", price, f"v{i}", now, upstream=f"v{i}")
        for i, price in enumerate([100.0, 101.5, 98.5, 101.2, 98.8])
    ]
    engine.book.add(quotes)
    await engine.publish_prices()
    alerts = [AlertMessage.model_validate(m) for m in published(pub, "alert.dislocation")]
    assert [a.data.alert_type for a in alerts] == ["dislocation"]
    assert alerts[0].data.symbol == "BTC" and alerts[0].data.value is not None
    engine.book.add(PriceQuote("BTC", 100.0, f"v{i}", now + 1, upstream=f"v{i}") for i in range(5))
    await engine.publish_prices()
    await engine.publish_prices()
    kinds = [m["data"]["alert_type"] for m in published(pub, "alert.dislocation")]
    assert kinds == ["dislocation", "dislocation_cleared"]


async def test_market_update_has_the_guides_shape_with_caps_and_volumes(
    catalog: Catalog, sim_fetcher: Any
) -> None:
    engine, pub = make_engine(catalog, sim_fetcher)
    for pid in price_providers(catalog):
        await engine.poll(pid)
    await engine.publish_prices()
    await engine.publish_market()
    (market,) = [MarketUpdate.model_validate(m) for m in published(pub, ".market")]
    assert set(market.data) == {s.lower() for s in catalog.symbols}
    assert market.data["btc"].market_cap and market.data["btc"].volume_24h
    assert market.data["btc"].price == engine.prices["BTC"].price


async def test_failing_provider_opens_its_breaker_and_is_reported_offline(
    catalog: Catalog, sim_fetcher: Any, simulator: Any
) -> None:
    simulator.set_faults({"okx": Fault(mode="server_error", status=502)})
    engine, pub = make_engine(catalog, sim_fetcher, breaker_failure_threshold=3)
    for _ in range(3):
        await engine.poll("okx")
    reports = [ProviderHealth.model_validate(h) for h in published(pub, "provider.health.okx")]
    assert [r.outcome for r in reports] == ["http_error"] * 3
    assert [r.status for r in reports] == ["offline"] * 3
    assert [r.breaker for r in reports] == ["closed", "closed", "open"]
    assert reports[-1].success_rate == 0.0
    assert reports[-1].detail == "HTTP 502: HTML error page"
    await engine.publish_provider_alerts()
    (alert,) = [AlertMessage.model_validate(a) for a in published(pub, ".alert.provider_outage")]
    assert (alert.data.provider_id, alert.data.severity) == ("okx", "warning")


async def test_breaker_defers_polls_until_the_probe(
    catalog: Catalog, sim_fetcher: Any, simulator: Any
) -> None:
    simulator.set_faults({"okx": Fault(mode="timeout")})
    engine, _ = make_engine(
        catalog, sim_fetcher, breaker_failure_threshold=1, breaker_open_base_s=60
    )
    await engine.poll("okx")
    state = engine.states["okx"]
    assert state.breaker.state == "open"
    due = engine.scheduler.due_at("okx")
    assert due is not None and due >= state.breaker.open_until - 0.01
    calls = len(sim_fetcher.requests)
    engine._start_poll(state, engine.clock())  # before the probe time: no request
    await asyncio.sleep(0)
    assert len(sim_fetcher.requests) == calls


async def test_rate_limited_provider_is_rate_limited_not_offline_and_waits(
    catalog: Catalog, sim_fetcher: Any, simulator: Any
) -> None:
    simulator.set_faults({"gemini": Fault(mode="rate_limit", retry_after_s=120)})
    engine, pub = make_engine(catalog, sim_fetcher)
    before = engine.clock()
    await engine.poll("gemini")
    (health,) = [ProviderHealth.model_validate(h) for h in published(pub, "provider.health.gemini")]
    assert (health.outcome, health.status, health.retry_after_s, health.breaker) == (
        "rate_limited",
        "rate_limited",
        120.0,
        "closed",
    )
    assert engine.scheduler.due_at("gemini") >= before + 120  # type: ignore[operator]


@pytest.mark.parametrize(
    "mode", ["bad_price", "wild_price", "garbage", "truncated", "error_body", "html"]
)
async def test_no_bad_price_reaches_a_price_update(
    catalog: Catalog, sim_fetcher: Any, simulator: Any, mode: str
) -> None:
    victims = price_providers(catalog)[::3]  # a third of the price sources
    simulator.set_faults({pid: Fault(mode=mode) for pid in victims})  # type: ignore[arg-type]
    engine, pub = make_engine(catalog, sim_fetcher)
    for pid in price_providers(catalog):
        report = await engine.poll(pid)
        if pid in victims and mode != "wild_price":
            assert report.outcome == "bad_response", (pid, report.detail)
    await engine.publish_prices()
    truth = simulator.world.truth(simulator.clock())
    updates = [PriceUpdate.model_validate(m) for m in published(pub, ".price.")]
    assert len(updates) == len(catalog.symbols)
    for update in updates:
        assert update.data.price == pytest.approx(truth[update.data.symbol], rel=0.005)
    if mode == "wild_price":
        assert set(engine.prices["BTC"].rejected) <= {catalog.upstream_of(v) for v in victims}
        assert engine.prices["BTC"].rejected


async def test_news_is_published_once_with_its_id_as_msg_id(
    catalog: Catalog, sim_fetcher: Any
) -> None:
    engine, pub = make_engine(catalog, sim_fetcher)
    feeds = [p.id for p in catalog.providers if p.family == "rss"]
    for pid in feeds:
        await engine.poll(pid)
    messages = [(orjson.loads(p), h) for s, p, h in pub.messages if s.endswith(".news")]
    ids = [m["data"]["id"] for m, _ in messages]
    assert ids and len(ids) == len(set(ids))  # syndicated stories appear once
    for message, headers in messages:
        NewsMessage.model_validate(message)
        assert headers == {"Nats-Msg-Id": message["data"]["id"]}
    for pid in feeds:  # a second round brings nothing new yet
        await engine.poll(pid)
    assert len([s for s, _, _ in pub.messages if s.endswith(".news")]) == len(ids)


async def test_disabled_providers_are_reported_and_never_polled(
    catalog: Catalog, sim_fetcher: Any
) -> None:
    engine, pub = make_engine(catalog, sim_fetcher, keys=False)
    disabled = {p.id for p in catalog.providers if disabled_reason(p, {})}
    assert len(disabled) >= 15
    await engine._report_disabled(force=True)
    reports = [ProviderHealth.model_validate(h) for h in published(pub, "provider.health.")]
    assert {r.provider_id for r in reports} == disabled
    assert {(r.status, r.outcome) for r in reports} == {("disabled", "disabled")}
    assert all(engine.scheduler.due_at(pid) is None for pid in disabled)


async def test_running_engine_reports_every_provider(catalog: Catalog, sim_fetcher: Any) -> None:
    engine, pub = make_engine(
        catalog,
        sim_fetcher,
        keys=False,
        poll_interval_scale=0.01,
        initial_spread_s=0.5,
        price_tick_s=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    ids = {p.id for p in catalog.providers}
    for _ in range(200):
        seen = {h["provider_id"] for h in published(pub, "provider.health.")}
        if seen == ids and published(pub, "price.BTC"):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert {h["provider_id"] for h in published(pub, "provider.health.")} == ids
    assert published(pub, "price.BTC")
    assert [
        p.id
        for p in catalog.providers
        if not engine.states[p.id].disabled and not engine.states[p.id].polls
    ] == []


async def test_live_mode_without_network_says_so_once(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    class NoNetwork:
        async def fetch(self, spec: Any, *, timeout_s: float) -> Any:
            raise NetworkError("ConnectError: [Errno -3] Temporary failure in name resolution")

    engine, pub = make_engine(
        catalog,
        NoNetwork(),
        override=None,
        keys=False,
        no_network_grace_s=0.3,
        initial_spread_s=0.1,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    with caplog.at_level(logging.ERROR, logger="pricewire.ingest"):
        for _ in range(100):
            if any("make demo" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    errors = [r.getMessage() for r in caplog.records if "make demo" in r.getMessage()]
    assert len(errors) == 1
    assert "no provider answered" in errors[0]
    statuses = {h["status"] for h in published(pub, "provider.health.")}
    assert statuses == {"offline", "disabled"}


async def test_shards_split_polling_and_one_publishes_the_consensus_of_all(
    catalog: Catalog, sim_fetcher: Any
) -> None:
    zero, pub0 = make_engine(catalog, sim_fetcher, shard_index=0, shard_count=2)
    one, pub1 = make_engine(catalog, sim_fetcher, shard_index=1, shard_count=2)
    assert zero.settings.publishes_prices and not one.settings.publishes_prices
    assert set(zero.states).isdisjoint(one.states)
    assert set(zero.states) | set(one.states) == {p.id for p in catalog.providers}
    for engine in (zero, one):
        for pid in price_providers(catalog):
            if pid in engine.states and not engine.states[pid].disabled:
                await engine.poll(pid)
    forwarded = [ProviderQuotes.model_validate(q) for q in published(pub1, "provider.quotes.")]
    assert forwarded
    assert all(q.shard == 1 for q in forwarded)
    assert not published(pub0, "provider.quotes.")  # the consensus shard keeps its own
    assert not any("quotes" in h for h in published(pub1, "provider.health."))
    own = len({q.upstream for q in zero.book.quotes("BTC")})
    kept = sum(zero.add_remote_quotes(q) for q in forwarded)
    assert kept > 0
    mine = forwarded[0].model_copy(update={"shard": 0})
    assert zero.add_remote_quotes(mine) == 0  # its own shard's: ignored
    with pytest.raises(ValidationError):  # a bad price never becomes a quote
        ProviderQuotes.model_validate(
            {
                "shard": 1,
                "provider_id": "x",
                "category": "exchange",
                "quotes": [{"symbol": "BTC", "price": -1, "observed_at": 1}],
            }
        )
    await zero.publish_prices()
    (btc,) = [PriceUpdate.model_validate(m) for m in published(pub0, "price.BTC")]
    upstreams = {q.upstream for q in zero.book.quotes("BTC")}
    assert btc.data.sources == len(upstreams) > own
    assert btc.data.venues == sorted(upstreams)
