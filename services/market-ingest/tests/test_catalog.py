"""The catalog file: big enough, coherent, every family known, sharding without overlap."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_ingest.adapters import ADAPTERS, adapter_for, build_request
from pricewire_ingest.catalog import (
    Catalog,
    default_catalog_path,
    disabled_reason,
    load_catalog,
    shard_of,
)
from pricewire_ingest.errors import CatalogError


def test_catalog_holds_at_least_100_providers_in_every_category(catalog: Catalog) -> None:
    assert len(catalog.providers) >= 100
    categories = {p.category for p in catalog.providers}
    assert categories == {"market_data", "exchange", "news", "sentiment", "onchain", "rpc", "defi"}


def test_every_family_the_issue_names_has_a_provider(catalog: Catalog) -> None:
    families = {p.family for p in catalog.providers}
    for needed in (
        "coingecko_markets",
        "coinpaprika_tickers",
        "coincap_assets",
        "cryptocompare_pricemultifull",
        "binance_24hr",
        "kraken_ticker",
        "coinbase_stats",
        "bitfinex_tickers",
        "okx_tickers",
        "bybit_tickers",
        "kucoin_alltickers",
        "gateio_tickers",
        "htx_tickers",
        "bitstamp_tickers",
        "gemini_pricefeed",
        "coinlore_tickers",
        "defillama_prices",
        "rss",
        "fear_greed",
        "evm_rpc",
    ):
        assert needed in families
    feeds = {p.name for p in catalog.providers if p.family == "rss"}
    for outlet in ("CoinDesk", "Cointelegraph", "Decrypt", "Bitcoin Magazine"):
        assert any(outlet.lower() in name.lower() for name in feeds), outlet


def test_every_family_in_the_catalog_has_an_adapter(catalog: Catalog) -> None:
    assert {p.family for p in catalog.providers} <= set(ADAPTERS)
    load_catalog(families=ADAPTERS)


def test_the_catalog_file_holds_no_key() -> None:
    text = default_catalog_path().read_text()
    # env var names only: nothing that looks like a secret value
    assert not re.search(
        r"(?<!0x)(?<![A-Fa-f0-9])[A-Fa-f0-9]{32,}", text
    )  # contract addresses aside
    # Ethplorer's documented public demo key is the one literal allowed
    assert text.lower().count('"apikey": "') == text.count('"apiKey": "freekey"') == 1
    data = json.loads(text)
    for provider in data["providers"]:
        assert set(provider["auth"]) <= {"type", "env", "name", "required"}


def test_keyed_provider_without_its_key_is_disabled_not_polled(catalog: Catalog) -> None:
    cmc = catalog.provider("coinmarketcap_primary_1")
    assert disabled_reason(cmc, {}) == "needs an API key in COINMARKETCAP_API_KEY"
    assert disabled_reason(cmc, {"COINMARKETCAP_API_KEY": "k"}) is None
    # an optional key: polled without it
    assert disabled_reason(catalog.provider("cryptocompare"), {}) is None
    assert disabled_reason(catalog.provider("polygon_mumbai"), {}).startswith("inactive:")


def test_every_active_provider_builds_a_request(catalog: Catalog) -> None:
    for p in catalog.providers:
        spec = build_request(p, adapter_for(p.family), catalog.assets, key="KEY")
        assert "{" not in spec.url, p.id
        assert all("{" not in v for v in spec.params.values()), p.id


@given(st.integers(min_value=1, max_value=12))
def test_shards_partition_the_catalog(count: int) -> None:
    catalog = load_catalog()
    seen: list[str] = []
    for index in range(count):
        seen += [p.id for p in catalog.shard(index, count)]
    assert sorted(seen) == sorted(p.id for p in catalog.providers)


def test_providers_sharing_a_rate_limit_share_a_shard(catalog: Catalog) -> None:
    for count in (2, 3, 5):
        by_group: dict[str, set[int]] = {}
        for p in catalog.providers:
            by_group.setdefault(p.group, set()).add(shard_of(p, count))
        assert all(len(shards) == 1 for shards in by_group.values())


def _write(tmp_path: Path, catalog: dict[str, object]) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def _minimal(**provider: object) -> dict[str, object]:
    base = {
        "id": "p1",
        "name": "P1",
        "category": "exchange",
        "family": "kraken_ticker",
        "base_url": "https://api.example.com",
        "rate_limit": {"requests": 1, "per_s": 1, "documented": "1/s"},
        "poll_interval_s": 10,
    }
    return {
        "version": 1,
        "assets": [{"symbol": "BTC", "name": "Bitcoin", "name_fa": "بیت‌کوین"}],
        "providers": [{**base, **provider}],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "Bad Id"}, "id"),
        ({"category": "weather"}, "category"),
        ({"auth": {"type": "query", "env": "K"}}, "needs name"),
        ({"auth": {"type": "header", "name": "X-Key"}}, "needs env"),
        (
            {
                "poll_interval_s": 0.5,
                "rate_limit": {"requests": 1, "per_s": 1, "documented": "1/s"},
            },
            "poll_interval_s",
        ),
        (
            {"rate_limit": {"requests": 1, "per_s": 60, "documented": "1/min"}},
            "exceed the rate limit",
        ),
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"upstream": "Binance Spot"}, "upstream"),
    ],
)
def test_invalid_catalog_is_refused_with_a_reason(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        load_catalog(_write(tmp_path, _minimal(**change)))


def test_duplicate_ids_and_unknown_families_are_refused(tmp_path: Path) -> None:
    data = _minimal()
    data["providers"] = [*data["providers"], *data["providers"]]  # type: ignore[misc]
    with pytest.raises(CatalogError, match="duplicate provider id"):
        load_catalog(_write(tmp_path, data))
    with pytest.raises(CatalogError, match="unknown adapter families"):
        load_catalog(_write(tmp_path, _minimal(family="nope")), families=ADAPTERS)
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.json")


def test_every_entry_names_its_upstream_and_mirrors_are_marked(catalog: Catalog) -> None:
    raw = json.loads(default_catalog_path().read_text(encoding="utf-8"))
    unnamed = [p["id"] for p in raw["providers"] if not p.get("upstream")]
    assert unnamed == [], "every catalog entry names its upstream explicitly"
    by_id = {p.id: p for p in catalog.providers}
    assert {by_id[pid].upstream for pid in ("binance_public", "binance_vision")} == {"binance"}
    assert by_id["cg_simple_price"].upstream == by_id["coingecko"].upstream == "coingecko"
    assert {by_id[pid].upstream for pid in ("coinbase_exchange", "coinbase_spot")} == {"coinbase"}
    assert by_id["kraken"].upstream != by_id["binance_us"].upstream != "binance"
    # of each upstream, exactly one entry is not a mirror
    upstreams = {p.upstream for p in catalog.providers}
    primaries = [p for p in catalog.providers if p.id not in catalog.mirrors]
    assert sorted(p.upstream for p in primaries) == sorted(upstreams)
    assert "binance_vision" in catalog.mirrors and "binance_public" not in catalog.mirrors
    assert catalog.upstream_of("binance_vision") == "binance"
    assert catalog.upstream_of("not_in_the_catalog") == "not_in_the_catalog"


def test_upstream_defaults_to_the_id_and_an_active_entry_is_the_primary(tmp_path: Path) -> None:
    data = _minimal()
    (base,) = data["providers"]  # type: ignore[misc]
    data["providers"] = [
        {**base, "id": "old", "upstream": "kraken", "inactive": "retired"},
        {**base, "id": "new", "upstream": "kraken", "rate_group": "b"},
        {**base, "id": "other", "rate_group": "c"},
    ]
    catalog = load_catalog(_write(tmp_path, data))
    assert [p.upstream for p in catalog.providers] == ["kraken", "kraken", "other"]
    assert catalog.mirrors == {"old"}


def test_docs_list_every_provider(catalog: Catalog) -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "providers.md").read_text()
    missing = [p.id for p in catalog.providers if f"| `{p.id}` |" not in doc]
    assert missing == [], "add them to docs/providers.md"
