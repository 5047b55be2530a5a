"""The request a poll makes: templates filled, keys placed where each API wants them, and the
base-URL override that sends the same code path to the simulator."""

from __future__ import annotations

import base64

import orjson

from pricewire_ingest.adapters import adapter_for, build_request
from pricewire_ingest.catalog import Auth, Catalog


def _spec(catalog: Catalog, provider_id: str, **kw: object):  # type: ignore[no-untyped-def]
    p = catalog.provider(provider_id)
    return build_request(p, adapter_for(p.family), catalog.assets, **kw)  # type: ignore[arg-type]


def test_ids_and_pairs_are_filled_per_family(catalog: Catalog) -> None:
    cg = _spec(catalog, "coingecko")
    assert cg.url == "https://api.coingecko.com/api/v3/coins/markets"
    assert cg.params["ids"].split(",")[:3] == ["bitcoin", "ethereum", "binancecoin"]
    kraken = _spec(catalog, "kraken")
    assert kraken.params["pair"].startswith("XBTUSD,ETHUSD,")
    assert "XDGUSD" in kraken.params["pair"]
    binance = _spec(catalog, "binance_public")
    assert orjson.loads(binance.params["symbols"])[:2] == ["BTCUSDT", "ETHUSDT"]
    bitfinex = _spec(catalog, "bitfinex")
    assert "tDOGE:USD" in bitfinex.params["symbols"].split(",")
    llama = _spec(catalog, "defillama_prices")
    assert llama.url.startswith(
        "https://coins.llama.fi/prices/current/coingecko:bitcoin,coingecko:ethereum"
    )


def test_keys_go_where_each_api_expects_them(catalog: Catalog) -> None:
    assert _spec(catalog, "coinmarketcap_primary_1", key="k1").headers["X-CMC_PRO_API_KEY"] == "k1"
    assert _spec(catalog, "cryptocompare", key="k2").params["api_key"] == "k2"
    assert _spec(catalog, "coincap", key="k3").headers["Authorization"] == "Bearer k3"
    # no entry of the catalog uses these two any more (Santiment and Zerion fed nothing)
    coincap = catalog.provider("coincap")
    for auth, key, expected in (
        (Auth(type="apikey_header", env="K", name="Authorization"), "k4", "Apikey k4"),
        (Auth(type="basic", env="K"), "k5", "Basic " + base64.b64encode(b"k5:").decode()),
    ):
        p = coincap.model_copy(update={"auth": auth})
        spec = build_request(p, adapter_for(p.family), catalog.assets, key=key)
        assert spec.headers["Authorization"] == expected
    assert (
        _spec(catalog, "infura_eth_mainnet", key="proj").url == "https://mainnet.infura.io/v3/proj"
    )
    # no key, no auth parameter at all
    assert "api_key" not in _spec(catalog, "cryptocompare").params


def test_json_rpc_probes_post_a_call(catalog: Catalog) -> None:
    evm = _spec(catalog, "ankr_eth")
    # the latest block header: head, block time and base fee in one call
    assert (evm.method, evm.json["method"], evm.json["params"]) == (
        "POST",
        "eth_getBlockByNumber",
        ["latest", False],
    )
    assert _spec(catalog, "solana_mainnet").json["method"] == "getSlot"
    tron = _spec(catalog, "trongrid_mainnet")
    assert (tron.method, tron.url, tron.json) == (
        "POST",
        "https://api.trongrid.io/wallet/getnowblock",
        {},
    )


def test_base_url_override_keeps_path_and_query_and_drops_path_keys(catalog: Catalog) -> None:
    over = "http://127.0.0.1:9999/"
    cg = _spec(catalog, "coingecko", base_url_override=over)
    assert cg.url == "http://127.0.0.1:9999/coingecko/coins/markets"
    assert cg.params == _spec(catalog, "coingecko").params
    infura = _spec(catalog, "infura_eth_mainnet", key="proj", base_url_override=over)
    assert infura.url == "http://127.0.0.1:9999/infura_eth_mainnet"
    feed = _spec(catalog, "bitcoinmagazine_rss", base_url_override=over)
    assert feed.url == "http://127.0.0.1:9999/bitcoinmagazine_rss"
