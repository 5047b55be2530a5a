"""Every adapter against answers recorded in its provider's exact shape, errors included."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pricewire_ingest.adapters import ADAPTERS
from pricewire_ingest.errors import BadResponse, HttpStatusError, PollFailure, RateLimited

# family, fixture, provider (None: the first of the family), {symbol: price}, extra checks
PRICE_CASES: list[tuple[str, str, str | None, dict[str, float], dict[str, Any]]] = [
    (
        "coingecko_markets",
        "coingecko_markets.ok.json",
        None,
        {"BTC": 43250, "ETH": 2280.12},
        {"change": ("BTC", 2.34358), "cap": ("BTC", 847303846937), "volume": ("ETH", 9517326541)},
    ),
    (
        "coingecko_simple",
        "coingecko_simple.ok.json",
        None,
        {"BTC": 43250, "ETH": 2280.12},
        {"change": ("ETH", -1.2003139), "observed": ("BTC", 1705314594)},
    ),
    (
        "coingecko_coin",
        "coingecko_coin.ok.json",
        None,
        {"BTC": 43250},
        {"cap": ("BTC", 847303846937)},
    ),
    (
        "coinmarketcap_quotes",
        "coinmarketcap_quotes.ok.json",
        None,
        {"BTC": 43251.32, "ETH": 2280.4},
        {"change": ("BTC", 2.35)},
    ),
    (
        "cryptocompare_pricemultifull",
        "cryptocompare_pricemultifull.ok.json",
        None,
        {"BTC": 43248.97, "ETH": 2279.88},
        {"change": ("BTC", 2.3448), "volume": ("BTC", 13490000000.7)},
    ),
    ("cryptocompare_histominute", "cryptocompare_histominute.ok.json", None, {"BTC": 43249.1}, {}),
    (
        "coinpaprika_tickers",
        "coinpaprika_tickers.ok.json",
        None,
        {"BTC": 43245.71, "ETH": 2280.55},
        {"count": 2},
    ),
    ("coinpaprika_ticker", "coinpaprika_ticker.ok.json", None, {"BTC": 43245.71}, {}),
    (
        "coincap_assets",
        "coincap_assets.ok.json",
        None,
        {"BTC": 43248.3171829381, "ETH": 2279.99123912},
        {"change": ("ETH", -1.1923912391)},
    ),
    ("coincap_asset", "coincap_asset.ok.json", None, {"BTC": 43248.3171829381}, {}),
    (
        "coinlore_tickers",
        "coinlore_tickers.ok.json",
        None,
        {"BTC": 43251.19, "ETH": 2280.31},
        {"count": 2},
    ),
    (
        "messari_metrics",
        "messari_metrics.ok.json",
        None,
        {"BTC": 43247.1123},
        {"cap": ("BTC", 847412345123.4)},
    ),
    ("coinapi_exchangerate", "coinapi_exchangerate.ok.json", None, {"BTC": 43249.873121234}, {}),
    (
        "dia_quotation",
        "dia_quotation.ok.json",
        None,
        {"BTC": 43247.91231},
        {"change": ("BTC", (43247.91231 / 42263.1123 - 1) * 100)},
    ),
    ("coinstats_coins", "coinstats_coins.ok.json", None, {"BTC": 43249.12, "ETH": 2280.01}, {}),
    ("defillama_prices", "defillama_prices.ok.json", None, {"BTC": 43246.12, "ETH": 2280.41}, {}),
    (
        "binance_24hr",
        "binance_24hr.ok.json",
        None,
        {"BTC": 43252.01, "ETH": 2280.55},
        {"change": ("BTC", 2.354), "volume": ("BTC", 1342912391.123)},
    ),
    (
        "binance_price",
        "binance_price.ok.json",
        "mexc",
        {"BTC": 43251.99, "ETH": 2280.61},
        {"count": 2},
    ),
    ("binance_klines", "binance_klines.ok.json", None, {"BTC": 43249.1}, {}),
    (
        "kraken_ticker",
        "kraken_ticker.ok.json",
        None,
        {"BTC": 43252.0, "ETH": 2280.61, "SOL": 98.11},
        {"change": ("BTC", None)},  # "o" is today's open, not 24 h ago: no change
    ),
    (
        "coinbase_stats",
        "coinbase_stats.ok.json",
        None,
        {"BTC": 43250.92, "ETH": 2280.49},
        {"change": ("ETH", (2280.49 / 2308.3 - 1) * 100), "count": 2},
    ),
    ("coinbase_spot", "coinbase_spot.ok.json", None, {"BTC": 43250.73}, {}),
    (
        "bitfinex_tickers",
        "bitfinex_tickers.ok.json",
        None,
        {"BTC": 43250, "ETH": 2280.2, "DOGE": 0.08492},
        {"change": ("BTC", 2.35)},
    ),
    (
        "okx_tickers",
        "okx_tickers.ok.json",
        None,
        {"BTC": 43251.3, "ETH": 2280.44},
        {"change": ("BTC", (43251.3 / 42258.1 - 1) * 100), "count": 2},
    ),
    (
        "bybit_tickers",
        "bybit_tickers.ok.json",
        None,
        {"BTC": 43251, "ETH": 2280.31},
        {"change": ("ETH", -1.2)},
    ),
    (
        "kucoin_alltickers",
        "kucoin_alltickers.ok.json",
        None,
        {"BTC": 43251, "ETH": 2280.31},
        {"change": ("BTC", 2.35)},
    ),
    (
        "gateio_tickers",
        "gateio_tickers.ok.json",
        None,
        {"BTC": 43250.8, "ETH": 2280.4},
        {"change": ("BTC", 2.35)},
    ),
    ("htx_tickers", "htx_tickers.ok.json", None, {"BTC": 43251.1, "ETH": 2280.5}, {"count": 2}),
    (
        "bitstamp_tickers",
        "bitstamp_tickers.ok.json",
        None,
        {"BTC": 43250, "ETH": 2280.4},
        {"count": 2, "observed": ("BTC", 1705314599)},
    ),
    (
        "gemini_pricefeed",
        "gemini_pricefeed.ok.json",
        None,
        {"BTC": 43251.56, "ETH": 2280.33, "DOGE": 0.08492},
        {"change": ("ETH", -1.2), "count": 3},
    ),
    (
        "bitget_tickers",
        "bitget_tickers.ok.json",
        None,
        {"BTC": 43250.5, "ETH": 2280.41},
        {"change": ("BTC", 2.349)},
    ),
    (
        "cryptocom_tickers",
        "cryptocom_tickers.ok.json",
        None,
        {"BTC": 43250.77, "ETH": 2280.52},
        {"change": ("BTC", 2.35)},
    ),
    ("etherscan_price", "etherscan_price.ok.json", "etherscan_primary", {"ETH": 2280.17}, {}),
    ("etherscan_price", "etherscan_price.ok.json", "bscscan_primary", {"BNB": 2280.17}, {}),
    (
        "blockchair_stats",
        "blockchair_stats.ok.json",
        "blockchair_bitcoin",
        {"BTC": 43248},
        {"change": ("BTC", 2.3312)},
    ),
    (
        "mempool_prices",
        "mempool_prices.ok.json",
        None,
        {"BTC": 43249},
        {"observed": ("BTC", 1705314591)},
    ),
]


@pytest.mark.parametrize(
    ("family", "name", "provider_id", "prices", "checks"),
    PRICE_CASES,
    ids=[f"{c[0]}-{c[2] or 'default'}" for c in PRICE_CASES],
)
def test_price_adapter_reads_recorded_answer(
    *,
    family: str,
    name: str,
    provider_id: str | None,
    prices: dict[str, float],
    checks: dict[str, Any],
    parse: Any,
    recorded: Any,
    now: float,
    catalog: Any,
) -> None:
    data = parse(family, recorded(name), provider_id=provider_id)
    got = {q.symbol: q for q in data.quotes}
    for symbol, price in prices.items():
        assert got[symbol].price == pytest.approx(price, rel=1e-9)
        assert got[symbol].observed_at <= now
    for q in data.quotes:
        assert math.isfinite(q.price) and q.price > 0
    if "count" in checks:
        assert len(data.quotes) == checks["count"]
    for key, attr in (("change", "change_24h"), ("cap", "market_cap"), ("volume", "volume_24h")):
        if key in checks:
            symbol, value = checks[key]
            if value is None:
                assert getattr(got[symbol], attr) is None
            else:
                assert getattr(got[symbol], attr) == pytest.approx(value, rel=1e-6)
    if "observed" in checks:
        symbol, value = checks["observed"]
        assert got[symbol].observed_at == value


def test_coinpaprika_matches_on_id_not_on_the_ambiguous_symbol(
    *, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    data = parse("coinpaprika_tickers", recorded("coinpaprika_tickers.ok.json"))
    btc = [q for q in data.quotes if q.symbol == "BTC"]
    assert [q.price for q in btc] == [43245.71]  # not the 0.0041 "Bitcoin Token"


def test_a_provider_timestamp_in_the_future_is_not_trusted(
    *, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    data = parse("coingecko_simple", recorded("coingecko_simple.ok.json"), now=1705314000.0)
    assert all(q.observed_at == 1705314000.0 for q in data.quotes)


# family, fixture, status, headers, expected outcome, provider
ERROR_CASES: list[tuple[str, str, int, dict[str, str], type[PollFailure], str | None]] = [
    (
        "coingecko_markets",
        "coingecko_markets.ratelimit.json",
        429,
        {"retry-after": "60"},
        RateLimited,
        None,
    ),
    ("coingecko_markets", "coingecko_markets.keymissing.json", 200, {}, BadResponse, None),
    ("coingecko_markets", "coingecko_markets.keymissing.json", 401, {}, HttpStatusError, None),
    ("coingecko_markets", "coingecko_markets.badprice.json", 200, {}, BadResponse, None),
    ("coingecko_coin", "coingecko_coin.notfound.json", 404, {}, HttpStatusError, None),
    ("coingecko_coin", "coingecko_coin.notfound.json", 200, {}, BadResponse, None),
    (
        "coinmarketcap_quotes",
        "coinmarketcap_quotes.keymissing.json",
        401,
        {},
        HttpStatusError,
        None,
    ),
    ("coinmarketcap_quotes", "coinmarketcap_quotes.minutelimit.json", 200, {}, RateLimited, None),
    (
        "cryptocompare_pricemultifull",
        "cryptocompare_pricemultifull.error.json",
        200,
        {},
        BadResponse,
        None,
    ),
    (
        "cryptocompare_pricemultifull",
        "cryptocompare_pricemultifull.ratelimit.json",
        200,
        {},
        RateLimited,
        None,
    ),
    (
        "cryptocompare_pricemultifull",
        "cryptocompare_pricemultifull.badprice.json",
        200,
        {},
        BadResponse,
        None,
    ),
    ("coinpaprika_ticker", "coinpaprika_ticker.notfound.json", 404, {}, HttpStatusError, None),
    ("coinpaprika_ticker", "coinpaprika_ticker.notfound.json", 200, {}, BadResponse, None),
    ("coincap_asset", "coincap_asset.notfound.json", 404, {}, HttpStatusError, None),
    ("coincap_asset", "coincap_asset.notfound.json", 200, {}, BadResponse, None),
    ("messari_metrics", "messari_metrics.notfound.json", 200, {}, BadResponse, None),
    (
        "coinapi_exchangerate",
        "coinapi_exchangerate.invalidkey.json",
        401,
        {},
        HttpStatusError,
        None,
    ),
    ("binance_24hr", "binance_24hr.invalidsymbol.json", 400, {}, HttpStatusError, None),
    ("binance_24hr", "binance_24hr.toomany.json", 429, {"retry-after": "17"}, RateLimited, None),
    ("binance_24hr", "binance_24hr.toomany.json", 418, {"retry-after": "120"}, RateLimited, None),
    ("binance_24hr", "binance_24hr.badprice.json", 200, {}, BadResponse, None),
    ("kraken_ticker", "kraken_ticker.unknownpair.json", 200, {}, BadResponse, None),
    ("kraken_ticker", "kraken_ticker.ratelimit.json", 200, {}, RateLimited, None),
    ("kraken_ticker", "kraken_ticker.badprice.json", 200, {}, BadResponse, None),
    ("coinbase_stats", "coinbase_stats.notfound.json", 404, {}, HttpStatusError, None),
    ("coinbase_spot", "coinbase_spot.invalid.json", 200, {}, BadResponse, None),
    ("bitfinex_tickers", "bitfinex_tickers.error.json", 200, {}, BadResponse, None),
    ("bitfinex_tickers", "bitfinex_tickers.ratelimit.json", 200, {}, RateLimited, None),
    ("okx_tickers", "okx_tickers.instrument.json", 200, {}, BadResponse, None),
    ("okx_tickers", "okx_tickers.ratelimit.json", 200, {}, RateLimited, None),
    ("bybit_tickers", "bybit_tickers.paramserror.json", 200, {}, BadResponse, None),
    ("bybit_tickers", "bybit_tickers.toomany.json", 200, {}, RateLimited, None),
    ("kucoin_alltickers", "kucoin_alltickers.error.json", 200, {}, BadResponse, None),
    ("gateio_tickers", "gateio_tickers.invalidpair.json", 400, {}, HttpStatusError, None),
    ("gateio_tickers", "gateio_tickers.toomany.json", 429, {}, RateLimited, None),
    ("htx_tickers", "htx_tickers.error.json", 200, {}, BadResponse, None),
    ("bitstamp_tickers", "bitstamp_tickers.error.json", 200, {}, BadResponse, None),
    ("gemini_pricefeed", "gemini_pricefeed.ratelimited.json", 200, {}, RateLimited, None),
    ("gemini_pricefeed", "gemini_pricefeed.invalidsymbol.json", 400, {}, HttpStatusError, None),
    ("bitget_tickers", "bitget_tickers.error.json", 200, {}, BadResponse, None),
    ("cryptocom_tickers", "cryptocom_tickers.error.json", 200, {}, BadResponse, None),
    ("newsapi_everything", "newsapi_everything.ratelimited.json", 429, {}, RateLimited, None),
    ("newsapi_everything", "newsapi_everything.apikeyinvalid.json", 401, {}, HttpStatusError, None),
    ("newsapi_everything", "newsapi_everything.apikeyinvalid.json", 200, {}, BadResponse, None),
    ("cryptopanic_posts", "cryptopanic_posts.badtoken.json", 200, {}, BadResponse, None),
    ("reddit_listing", "reddit_listing.toomany.json", 429, {}, RateLimited, None),
    ("evm_rpc", "evm_rpc.ratelimit.json", 200, {}, RateLimited, None),
    ("evm_rpc", "evm_rpc.methodnotfound.json", 200, {}, BadResponse, None),
    ("evm_rpc", "evm_rpc.zero.json", 200, {}, BadResponse, None),
    ("tron_rpc", "tron_rpc.error.json", 200, {}, BadResponse, None),
    ("etherscan_price", "etherscan_price.ratelimit.json", 200, {}, RateLimited, None),
    ("etherscan_price", "etherscan_price.invalidkey.json", 200, {}, BadResponse, None),
    ("etherscan_proxy_block", "etherscan_price.ratelimit.json", 200, {}, RateLimited, None),
    ("blockchair_stats", "blockchair_stats.limit.json", 402, {}, RateLimited, "blockchair_bitcoin"),
    ("ethplorer_lastblock", "ethplorer_lastblock.invalidkey.json", 200, {}, BadResponse, None),
    ("whale_alert_status", "whale_alert_status.invalidkey.json", 200, {}, BadResponse, None),
    ("fear_greed", "fear_greed.error.json", 200, {}, BadResponse, None),
    ("http_probe", "http_probe.error.json", 200, {}, BadResponse, None),
    ("graphql_probe", "graphql_probe.error.json", 200, {}, BadResponse, None),
    ("rss", "cloudflare.html", 200, {"content-type": "text/html"}, BadResponse, None),
    ("rss", "cloudflare.html", 502, {"content-type": "text/html"}, HttpStatusError, None),
]


@pytest.mark.parametrize(
    ("family", "name", "status", "headers", "expected", "provider_id"),
    ERROR_CASES,
    ids=[f"{c[0]}-{c[1].split('.')[-2]}-{c[2]}" for c in ERROR_CASES],
)
def test_error_answer_is_a_failed_poll_of_the_right_kind(
    *,
    family: str,
    name: str,
    status: int,
    headers: dict[str, str],
    expected: type[PollFailure],
    provider_id: str | None,
    parse: Any,
    recorded: Any,
    now: float,
    catalog: Any,
) -> None:
    with pytest.raises(expected) as caught:
        parse(family, recorded(name), status=status, headers=headers, provider_id=provider_id)
    assert type(caught.value) is expected
    if "retry-after" in headers:
        assert isinstance(caught.value, RateLimited)
        assert caught.value.retry_after_s == float(headers["retry-after"])


def test_rss_feed_yields_entries_with_clean_text_and_canonical_ids(
    *, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    data = parse("rss", recorded("rss.coindesk.xml"))
    assert [e.title for e in data.news] == [
        "Bitcoin Climbs Above $43K as ETF Trading Enters Second Week",
        "Ether Slips 1% While Layer-2 Activity Hits Record",
    ]  # the untitled item is skipped
    first = data.news[0]
    assert (
        first.summary
        == "Spot bitcoin ETFs saw $1.2 billion of volume on Friday & the largest crypto rose."
    )
    assert first.published_at == 1705313100.0
    assert first.source == next(p.name for p in catalog.providers if p.family == "rss")
    assert data.items == 3


def test_the_same_story_from_two_feeds_has_one_id(
    *, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    coindesk = parse("rss", recorded("rss.coindesk.xml"), provider_id="rss_coindesk")
    body = recorded("rss.coindesk.xml").replace(b"utm_source=rss", b"utm_source=feedburner")
    other = parse("rss", body, provider_id="coindesk_feedburner")
    assert coindesk.news[0].id == other.news[0].id
    assert coindesk.news[0].url != other.news[0].url


def test_atom_feed_is_read_like_rss(*, parse: Any, recorded: Any, now: float) -> None:
    data = parse("rss", recorded("rss.github.atom"), provider_id="github_bitcoin_releases")
    (entry,) = data.news
    assert entry.title == "Bitcoin Core 27.0"
    assert entry.url == "https://github.com/bitcoin/bitcoin/releases/tag/v27.0"
    assert entry.published_at == 1713261600.0
    assert entry.summary == "Bitcoin Core version 27.0 is now available."


def test_feed_in_a_declared_legacy_encoding_is_decoded(
    *, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    data = parse("rss", recorded("rss.feedburner_latin1.xml"))
    assert data.news[0].title == "Café owners accept bitcoin"


def test_json_news_sources_yield_entries(
    *, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    newsapi = parse("newsapi_everything", recorded("newsapi_everything.ok.json"))
    assert [e.title for e in newsapi.news] == ["Bitcoin ETFs Post Record Volume", "[Removed]"]
    assert newsapi.news[0].source == "Decrypt (via NewsAPI)"
    assert newsapi.news[0].summary == "Spot ETFs traded $4.6 billion on day one."
    panic = parse("cryptopanic_posts", recorded("cryptopanic_posts.ok.json"))
    assert panic.news[0].published_at == 1705314060.0
    assert panic.news[0].source == "Cointelegraph (via CryptoPanic)"


@pytest.mark.parametrize(
    ("family", "name", "provider_id", "height"),
    [
        ("evm_rpc", "evm_rpc.ok.json", None, 0x12A05F2),
        ("solana_rpc", "solana_rpc.ok.json", None, 243887123),
        ("tron_rpc", "tron_rpc.ok.json", None, 60435260),
        ("etherscan_proxy_block", "etherscan_proxy_block.ok.json", None, 0x12A05F4),
        ("blockchair_stats", "blockchair_stats.ok.json", "blockchair_bitcoin", 826542),
        ("ethplorer_lastblock", "ethplorer_lastblock.ok.json", None, 19012345),
        ("esplora_height", "esplora_height.ok.txt", None, 826542),
    ],
)
def test_chain_probe_reads_the_block_height(
    *,
    family: str,
    name: str,
    provider_id: str | None,
    height: int,
    parse: Any,
    recorded: Any,
    now: float,
    catalog: Any,
) -> None:
    data = parse(family, recorded(name), provider_id=provider_id)
    assert data.chain_head is not None
    assert data.chain_head.height == height


def test_sentiment_defi_and_probes(*, parse: Any, recorded: Any) -> None:
    fng = parse("fear_greed", recorded("fear_greed.ok.json"))
    assert fng.sentiment is not None
    assert (fng.sentiment.value, fng.sentiment.classification) == (71, "Greed")
    assert parse("defillama_chains", recorded("defillama_chains.ok.json")).items == 3
    assert parse("defillama_stablecoins", recorded("defillama_stablecoins.ok.json")).items == 1
    assert parse("whale_alert_status", recorded("whale_alert_status.ok.json")).items == 4
    assert parse("reddit_listing", recorded("reddit_listing.ok.json")).items == 2
    assert parse("http_probe", recorded("http_probe.ok.json")).items == 1
    assert parse("http_probe", b"<html><body>ok</body></html>").items == 1
    assert parse("graphql_probe", recorded("graphql_probe.ok.json")).items == 1


# -- the same checks for every family: the generic failure shapes ------------------------
OK_FIXTURE: dict[str, tuple[str, str | None]] = {
    "coingecko_markets": ("coingecko_markets.ok.json", None),
    "coingecko_simple": ("coingecko_simple.ok.json", None),
    "coingecko_coin": ("coingecko_coin.ok.json", None),
    "coinmarketcap_quotes": ("coinmarketcap_quotes.ok.json", None),
    "cryptocompare_pricemultifull": ("cryptocompare_pricemultifull.ok.json", None),
    "cryptocompare_histominute": ("cryptocompare_histominute.ok.json", None),
    "coinpaprika_tickers": ("coinpaprika_tickers.ok.json", None),
    "coinpaprika_ticker": ("coinpaprika_ticker.ok.json", None),
    "coincap_assets": ("coincap_assets.ok.json", None),
    "coincap_asset": ("coincap_asset.ok.json", None),
    "coinlore_tickers": ("coinlore_tickers.ok.json", None),
    "messari_metrics": ("messari_metrics.ok.json", None),
    "coinapi_exchangerate": ("coinapi_exchangerate.ok.json", None),
    "dia_quotation": ("dia_quotation.ok.json", None),
    "coinstats_coins": ("coinstats_coins.ok.json", None),
    "defillama_prices": ("defillama_prices.ok.json", None),
    "binance_24hr": ("binance_24hr.ok.json", None),
    "binance_price": ("binance_price.ok.json", None),
    "binance_klines": ("binance_klines.ok.json", None),
    "kraken_ticker": ("kraken_ticker.ok.json", None),
    "coinbase_stats": ("coinbase_stats.ok.json", None),
    "coinbase_spot": ("coinbase_spot.ok.json", None),
    "bitfinex_tickers": ("bitfinex_tickers.ok.json", None),
    "okx_tickers": ("okx_tickers.ok.json", None),
    "bybit_tickers": ("bybit_tickers.ok.json", None),
    "kucoin_alltickers": ("kucoin_alltickers.ok.json", None),
    "gateio_tickers": ("gateio_tickers.ok.json", None),
    "htx_tickers": ("htx_tickers.ok.json", None),
    "bitstamp_tickers": ("bitstamp_tickers.ok.json", None),
    "gemini_pricefeed": ("gemini_pricefeed.ok.json", None),
    "bitget_tickers": ("bitget_tickers.ok.json", None),
    "cryptocom_tickers": ("cryptocom_tickers.ok.json", None),
    "rss": ("rss.coindesk.xml", None),
    "newsapi_everything": ("newsapi_everything.ok.json", None),
    "cryptopanic_posts": ("cryptopanic_posts.ok.json", None),
    "reddit_listing": ("reddit_listing.ok.json", None),
    "evm_rpc": ("evm_rpc.ok.json", None),
    "solana_rpc": ("solana_rpc.ok.json", None),
    "tron_rpc": ("tron_rpc.ok.json", None),
    "etherscan_price": ("etherscan_price.ok.json", None),
    "etherscan_proxy_block": ("etherscan_proxy_block.ok.json", None),
    "blockchair_stats": ("blockchair_stats.ok.json", "blockchair_bitcoin"),
    "ethplorer_lastblock": ("ethplorer_lastblock.ok.json", None),
    "esplora_height": ("esplora_height.ok.txt", None),
    "mempool_prices": ("mempool_prices.ok.json", None),
    "whale_alert_status": ("whale_alert_status.ok.json", None),
    "fear_greed": ("fear_greed.ok.json", None),
    "defillama_chains": ("defillama_chains.ok.json", None),
    "defillama_stablecoins": ("defillama_stablecoins.ok.json", None),
    "http_probe": ("http_probe.ok.json", None),
    "graphql_probe": ("graphql_probe.ok.json", None),
}
FAMILIES = sorted(ADAPTERS)


def test_every_family_has_a_recorded_answer(
    *, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    assert sorted(OK_FIXTURE) == FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_recorded_answer_parses(
    *, family: str, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    name, provider_id = OK_FIXTURE[family]
    parse(family, recorded(name), provider_id=provider_id)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "esplora_height"])
def test_truncated_answer_is_a_bad_response(
    *, family: str, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    name, provider_id = OK_FIXTURE[family]
    body = recorded(name)
    with pytest.raises(BadResponse):
        parse(family, body[: len(body) // 2], provider_id=provider_id)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "http_probe"])
def test_html_page_with_status_200_is_a_bad_response(
    *, family: str, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    _, provider_id = OK_FIXTURE[family]
    with pytest.raises(BadResponse):
        parse(family, recorded("cloudflare.html"), provider_id=provider_id)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "http_probe"])
def test_garbage_bytes_are_a_bad_response(
    *, family: str, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    _, provider_id = OK_FIXTURE[family]
    garbage = bytes(range(256)) * 4
    with pytest.raises(BadResponse):
        parse(family, garbage, provider_id=provider_id)


@pytest.mark.parametrize("family", FAMILIES)
def test_429_is_rate_limited_with_its_retry_after(
    *, family: str, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    _, provider_id = OK_FIXTURE[family]
    with pytest.raises(RateLimited) as caught:
        parse(
            family,
            b'{"error": "Too Many Requests"}',
            status=429,
            headers={"retry-after": "42"},
            provider_id=provider_id,
        )
    assert caught.value.retry_after_s == 42.0
    assert caught.value.outcome == "rate_limited"


@pytest.mark.parametrize("family", FAMILIES)
def test_5xx_html_page_is_an_http_error(
    *, family: str, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    _, provider_id = OK_FIXTURE[family]
    with pytest.raises(HttpStatusError) as caught:
        parse(family, recorded("cloudflare.html"), status=502, provider_id=provider_id)
    assert caught.value.status == 502
    assert "HTML error page" in caught.value.detail


@pytest.mark.parametrize("family", FAMILIES)
def test_empty_body_is_a_bad_response(
    *, family: str, parse: Any, recorded: Any, now: float, catalog: Any
) -> None:
    if family == "http_probe":
        return  # availability only: an empty 200 is still an answer
    _, provider_id = OK_FIXTURE[family]
    with pytest.raises(BadResponse):
        parse(family, b"", provider_id=provider_id)
