"""Chain heads: the RPC and explorer answers parsed into heads, merged per chain, published as
``ChainStatus`` on ``chain.<chain>``; every provider's health says what it feeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from pricewire_contracts import ChainStatus, ProviderHealth, SubjectCatalog
from pricewire_ingest.adapters import ADAPTERS, adapter_for, feeds_of
from pricewire_ingest.catalog import Catalog
from pricewire_ingest.core.chains import ChainBoard
from pricewire_ingest.quotes import ChainHead, PollData

from .test_engine import make_engine, published

NOW = 1705314600.0  # conftest's NOW: 2024-01-15T10:30:00Z


def _rpc(result: Any) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": result})


# -- parsing ----------------------------------------------------------------------------------


def test_evm_latest_block_gives_head_block_time_and_base_fee(
    parse: Callable[..., PollData],
) -> None:
    block = {
        "number": "0x12a05f2",
        "timestamp": hex(int(NOW) - 7),
        "baseFeePerGas": "0x5d21dba00",  # 25 gwei
        "hash": "0x" + "ab" * 32,
        "transactions": [],
    }
    head = parse("evm_rpc", _rpc(block), provider_id="ankr_eth").chain_head
    assert head == ChainHead("", 0x12A05F2, block_time=NOW - 7, base_fee_gwei=25.0)
    # eth_blockNumber's bare quantity and a pre-London block (no base fee) still read
    assert parse("evm_rpc", _rpc("0x10"), provider_id="ankr_eth").chain_head == ChainHead("", 16)
    old = parse("evm_rpc", _rpc({"number": "0x10", "timestamp": "0x5"}), provider_id="ankr_eth")
    assert old.chain_head == ChainHead("", 16)  # a block time of 1970 is left out


def test_tron_and_blockchair_give_the_head_blocks_own_time(
    parse: Callable[..., PollData],
) -> None:
    tron = {"block_header": {"raw_data": {"number": 58_000_001, "timestamp": NOW * 1000 - 3000}}}
    head = parse("tron_rpc", orjson.dumps(tron), provider_id="trongrid_mainnet").chain_head
    assert head == ChainHead("tron", 58_000_001, block_time=NOW - 3)
    stats = {
        "data": {
            "best_block_height": 830_000,
            "best_block_time": "2024-01-15 10:25:00",
            "market_price_usd": 43000.5,
        },
        "context": {"code": 200},
    }
    data = parse("blockchair_stats", orjson.dumps(stats), provider_id="blockchair_bitcoin")
    assert data.chain_head is not None  # its chain is the catalog's (the engine's test)
    assert (data.chain_head.height, data.chain_head.block_time) == (830_000, NOW - 300)
    assert [q.symbol for q in data.quotes] == ["BTC"]


def test_a_block_number_that_is_not_one_fails_the_poll(parse: Callable[..., PollData]) -> None:
    from pricewire_ingest.errors import BadResponse

    with pytest.raises(BadResponse):
        parse("evm_rpc", _rpc({"number": "0x0"}), provider_id="ankr_eth")
    with pytest.raises(BadResponse):
        parse("evm_rpc", _rpc({"timestamp": "0x5"}), provider_id="ankr_eth")


# -- feeds, from the adapter --------------------------------------------------------------------


def test_feeds_come_from_the_adapter_kind() -> None:
    assert feeds_of(adapter_for("kraken_ticker")) == ["prices"]
    assert feeds_of(adapter_for("rss")) == ["news"]
    assert feeds_of(adapter_for("fear_greed")) == ["sentiment"]
    assert feeds_of(adapter_for("evm_rpc")) == ["chain"]
    assert feeds_of(adapter_for("solana_rpc")) == ["chain"]
    assert feeds_of(adapter_for("blockchair_stats")) == ["prices", "chain"]
    assert feeds_of(adapter_for("http_probe")) == ["probe"]
    for adapter in ADAPTERS.values():
        assert feeds_of(adapter), adapter.family


def test_the_catalog_polls_nothing_that_feeds_nothing(catalog: Catalog) -> None:
    probes = [p.id for p in catalog.providers if feeds_of(adapter_for(p.family)) == ["probe"]]
    assert probes == []
    subjects = SubjectCatalog()
    for p in catalog.providers:
        if p.family in ("evm_rpc", "solana_rpc"):
            assert p.chain, f"{p.id}: an RPC node must name its chain"
            subjects.chain(p.chain)  # a valid subject token


# -- merging one chain's providers -----------------------------------------------------------------


def test_the_highest_fresh_head_wins_and_laggards_are_counted() -> None:
    board = ChainBoard(window_s=600)
    board.observe("ethereum", "ankr", ChainHead("ethereum", 100, base_fee_gwei=20.0), now=0.0)
    view = board.observe("ethereum", "cloudflare", ChainHead("ethereum", 97), now=5.0)
    assert (view.height, view.provider_id, view.base_fee_gwei) == (100, "ankr", 20.0)
    assert (view.providers, view.spread_blocks, view.behind) == (2, 3, 3)
    assert view.block_age_s == 5.0  # no block time: since the height was first seen
    view = board.observe("ethereum", "llama", ChainHead("ethereum", 101, block_time=9.0), now=10.0)
    assert (view.height, view.provider_id, view.block_age_s, view.behind) == (101, "llama", 1.0, 0)
    assert view.base_fee_gwei is None  # the head block's own, not an older block's
    # a provider silent for longer than the window no longer counts
    view = board.observe("ethereum", "cloudflare", ChainHead("ethereum", 150), now=700.0)
    assert (view.height, view.providers, view.spread_blocks) == (150, 1, 0)


def test_a_head_that_does_not_advance_is_stalled_after_ten_block_times() -> None:
    board = ChainBoard(stall_blocks=10, stall_min_s=180)
    assert board.stall_after_s("ethereum") == 180  # 10 x 12 s, at least 3 minutes
    assert board.stall_after_s("bitcoin") == 6000
    assert not board.observe("ethereum", "a", ChainHead("ethereum", 5), now=0.0).stalled
    assert not board.observe("ethereum", "a", ChainHead("ethereum", 5), now=170.0).stalled
    view = board.observe("ethereum", "a", ChainHead("ethereum", 5), now=200.0)
    assert view.stalled and view.block_age_s == 200.0
    assert not board.observe("ethereum", "a", ChainHead("ethereum", 6), now=201.0).stalled


# -- the engine ----------------------------------------------------------------------------------


async def test_each_chain_poll_publishes_one_chain_status(
    catalog: Catalog, sim_fetcher: Any
) -> None:
    engine, pub = make_engine(catalog, sim_fetcher)
    for pid in ("ankr_eth", "cloudflare_eth", "solana_mainnet", "trongrid_mainnet"):
        assert (await engine.poll(pid)).outcome == "ok"
    subjects = [s for s, _, _ in pub.messages if ".chain." in s]
    assert subjects == [
        "pricewire.v1.chain.ethereum",
        "pricewire.v1.chain.ethereum",
        "pricewire.v1.chain.solana",
        "pricewire.v1.chain.tron",
    ]
    eth = ChainStatus.model_validate(published(pub, "chain.ethereum")[-1])
    assert eth.chain == "ethereum" and eth.status == "ok" and eth.providers == 2
    assert eth.height >= 19_000_000 and eth.provider_id in ("ankr_eth", "cloudflare_eth")
    assert eth.block_time is not None and eth.base_fee_gwei is not None
    assert eth.base_fee_gwei > 0
    tron = ChainStatus.model_validate(published(pub, "chain.tron")[-1])
    assert tron.block_time is not None and tron.base_fee_gwei is None
    (health,) = [ProviderHealth.model_validate(h) for h in published(pub, "health.ankr_eth")]
    assert health.feeds == ["chain"]
    assert health.chain is not None and health.chain.chain == "ethereum"
    assert health.chain.height >= 19_000_000 and health.chain.base_fee_gwei is not None


async def test_health_says_what_every_provider_feeds(catalog: Catalog, sim_fetcher: Any) -> None:
    engine, pub = make_engine(catalog, sim_fetcher)
    for pid in ("kraken", "cointelegraph_rss", "alternative_me_fng", "blockchair_bitcoin"):
        await engine.poll(pid)
    feeds = {
        h.provider_id: h.feeds
        for h in (ProviderHealth.model_validate(m) for m in published(pub, "provider.health."))
    }
    assert feeds == {
        "kraken": ["prices"],
        "cointelegraph_rss": ["news"],
        "alternative_me_fng": ["sentiment"],
        "blockchair_bitcoin": ["prices", "chain"],
    }
    assert [s for s, _, _ in pub.messages if ".chain." in s] == ["pricewire.v1.chain.bitcoin"]
    # a provider the engine does not poll (no key) still says what it would feed
    engine, pub = make_engine(catalog, sim_fetcher, keys=False)
    await engine._report_disabled(force=True)
    disabled = [ProviderHealth.model_validate(h) for h in published(pub, "provider.health.")]
    assert disabled and all(h.feeds for h in disabled)
    assert {"chain"} <= {f for h in disabled for f in h.feeds}
