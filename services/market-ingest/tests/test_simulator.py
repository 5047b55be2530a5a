"""The simulator: every provider's normal answer parses with that provider's adapter, prices
agree with the simulated truth, faults produce the failures they name, and the control API."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from pricewire_ingest.adapters import ParseContext, RawResponse, adapter_for, evaluate
from pricewire_ingest.catalog import Catalog
from pricewire_ingest.core.news import news_id
from pricewire_ingest.errors import PollFailure
from pricewire_ingest.simulator.faults import FAULT_MODES, Fault, assign_faults
from pricewire_ingest.simulator.server import Simulator, create_app
from pricewire_ingest.simulator.world import MarketWorld, NewsDesk


def _evaluate(sim: Simulator, catalog: Catalog, pid: str, answer: Any) -> Any:
    provider = sim.providers[pid]
    headers = {"content-type": answer.content_type, "retry-after": "5"}
    ctx = ParseContext.for_provider(provider, catalog.assets, sim.clock())
    return evaluate(
        adapter_for(provider.family), RawResponse(answer.status, answer.body, headers), ctx
    )


def test_every_simulated_provider_answers_in_a_shape_its_adapter_reads(
    simulator: Simulator, catalog: Catalog
) -> None:
    truth = simulator.world.truth(simulator.clock())
    feeds_with_news = 0
    for p in catalog.providers:
        data = _evaluate(simulator, catalog, p.id, simulator.render(p))
        for quote in data.quotes:
            assert quote.price == pytest.approx(truth[quote.symbol], rel=0.002), (
                p.id,
                quote.symbol,
            )
        feeds_with_news += bool(data.news)
    assert feeds_with_news >= 10  # a few older stories are spread over the feeds at start


@pytest.mark.parametrize(
    ("pid", "mode", "outcome"),
    [
        ("kraken", "rate_limit", "rate_limited"),
        ("kraken", "server_error", "http_error"),
        ("kraken", "garbage", "bad_response"),
        ("kraken", "error_body", "bad_response"),
        ("kraken", "truncated", "bad_response"),
        ("kraken", "html", "bad_response"),
        ("kraken", "bad_price", "bad_response"),
        ("rss_decrypt", "error_body", "bad_response"),
        ("rss_decrypt", "truncated", "bad_response"),
        ("ankr_eth", "error_body", "bad_response"),
        ("coingecko", "rate_limit", "rate_limited"),
        ("cryptocompare", "error_body", "bad_response"),
    ],
)
async def test_faults_produce_the_failure_they_name(
    simulator: Simulator, catalog: Catalog, pid: str, mode: str, outcome: str
) -> None:
    simulator.set_faults({pid: Fault(mode=mode)})  # type: ignore[arg-type]
    answer = await simulator.answer(simulator.providers[pid])
    with pytest.raises(PollFailure) as caught:
        _evaluate(simulator, catalog, pid, answer)
    assert caught.value.outcome == outcome


async def test_wild_price_is_valid_shape_but_far_off(
    simulator: Simulator, catalog: Catalog
) -> None:
    simulator.set_faults({"kraken": Fault(mode="wild_price")})
    data = _evaluate(
        simulator, catalog, "kraken", await simulator.answer(simulator.providers["kraken"])
    )
    btc = next(q for q in data.quotes if q.symbol == "BTC")
    assert btc.price == pytest.approx(
        1.5 * simulator.world.price("BTC", simulator.clock()), rel=0.01
    )


def test_assign_faults_covers_the_share_and_every_mode() -> None:
    ids = [f"p{i}" for i in range(100)]
    faults = assign_faults(ids, fraction=0.3, seed=3)
    assert len(faults) == 30
    assert {f.mode for f in faults.values()} == set(FAULT_MODES)
    assert faults == assign_faults(ids, fraction=0.3, seed=3)
    with pytest.raises(ValueError, match="fraction"):
        assign_faults(ids, fraction=1.5)


def test_world_prices_walk_and_stay_positive(catalog: Catalog) -> None:
    world = MarketWorld(
        catalog.assets, seed=1, start=0.0, volatility_per_s=1e-3, jump_interval_s=60
    )
    seen = [world.price("BTC", float(t)) for t in range(0, 7200, 60)]
    assert len(set(seen)) > 100
    assert all(p > 0 for p in seen)
    assert world.price("BTC", 10_000_000.0) > 0  # a long pause is one combined step


def test_news_desk_writes_new_stories_and_syndicates_some() -> None:
    desk = NewsDesk(
        ["a", "b", "c"], {"BTC": "Bitcoin"}, interval_s=10, seed=2, start=0.0, syndication=0.9
    )
    before = {s.number for f in "abc" for s in desk.stories(f, 0.0)}
    after = {s.number for f in "abc" for s in desk.stories(f, 100.0)}
    assert len(after - before) == 10
    assert any(len(s.feeds) == 2 for f in "abc" for s in desk.stories(f, 100.0))


async def test_control_api_sets_clears_and_validates_faults(simulator: Simulator) -> None:
    transport = httpx.ASGITransport(app=create_app(simulator))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        r = await client.post(
            "/_faults", content=b'{"kraken": {"mode": "timeout", "hang_s": 0.01}}'
        )
        assert r.status_code == 200 and r.json()["kraken"]["mode"] == "timeout"
        assert (
            await client.post("/_faults", content=b'{"nope": {"mode": "html"}}')
        ).status_code == 400
        assert (
            await client.post("/_faults", content=b'{"kraken": {"mode": "melt"}}')
        ).status_code == 400
        assert (await client.post("/_faults", content=b'{"kraken": null}')).json() == {}
        await client.post("/_faults", content=b'{"okx": {"mode": "html"}}')
        assert (await client.delete("/_faults")).json() == {}
        truth = (await client.get("/_truth")).json()
        assert set(truth) >= {"BTC", "ETH"}
        ok = await client.get("/kraken/0/public/Ticker", params={"pair": "XBTUSD"})
        assert ok.status_code == 200 and ok.json()["error"] == []
        wrong = await client.get("/kraken/0/public/Depth")
        assert wrong.status_code == 404
        rpc = await client.post(
            "/ankr_eth", json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
        )
        assert rpc.json()["result"]["number"].startswith("0x")
        assert (await client.get("/_stats")).json()["kraken"] == 1
        await client.post(
            "/_faults", content=b'{"gemini": {"mode": "rate_limit", "retry_after_s": 9}}'
        )
        limited = await client.get("/gemini/v1/pricefeed")
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "9")


def test_syndicated_story_has_one_canonical_url(simulator: Simulator, catalog: Catalog) -> None:
    ids: dict[int, set[str]] = {}
    for p in catalog.providers:
        if p.family == "rss":
            body = simulator.render(p).body
            for entry in _evaluate(simulator, catalog, p.id, simulator.render(p)).news:
                ids.setdefault(hash(entry.title), set()).add(entry.id)
            assert body
    assert all(len(v) == 1 for v in ids.values())
    assert news_id("https://a.example/x/?utm_source=p1") == news_id(
        "https://a.example/x?utm_source=p2"
    )
    assert orjson.loads(b"{}") == {}
