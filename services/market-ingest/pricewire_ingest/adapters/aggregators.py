"""Market-data aggregators: CoinGecko, CoinMarketCap, CryptoCompare, Coinpaprika, CoinCap,
CoinLore, Messari, CoinAPI, DIA, CoinStats, DefiLlama prices.

Each aggregator is one :class:`~.specs.QuoteSpec` row in :data:`SPECS` (the class names stay,
made from the rows). Coins are matched on the aggregator's own id where symbols are ambiguous
(``match``); CryptoCompare's minute bars name their own ``parse``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import BadResponse, PollFailure, RateLimited
from ..quotes import PollData
from .base import ParseContext, as_dict, as_list, opt_float
from .specs import (
    ErrorCheck,
    QuoteSpec,
    SpecAdapter,
    adapter_class,
    body_ms,
    change_vs,
    either,
    iso,
    rate_words,
    secs,
)

__all__ = [
    "SPECS",
    "CoinApiExchangeRate",
    "CoinCapAsset",
    "CoinCapAssets",
    "CoinGeckoCoin",
    "CoinGeckoMarkets",
    "CoinGeckoSimple",
    "CoinLoreTickers",
    "CoinMarketCapQuotes",
    "CoinStatsCoins",
    "CoinpaprikaTicker",
    "CoinpaprikaTickers",
    "CryptoCompareHistoMinute",
    "CryptoComparePriceMultiFull",
    "DefiLlamaPrices",
    "DiaQuotation",
    "MessariMetrics",
]


def _status_error(
    vendor: str, rate: tuple[int, ...], ok: tuple[Any, ...] | None = None
) -> ErrorCheck:
    """An error in a ``status`` object: ``{"status": {"error_code", "error_message"}}``
    (CoinGecko, CoinMarketCap, Messari); a code in ``rate`` is a rate limit; a code in ``ok``
    (without ``ok``: none, or zero) is no error."""

    def check(data: Any) -> PollFailure | None:
        status = data.get("status") if isinstance(data, dict) else None
        code = status.get("error_code") if isinstance(status, dict) else None
        if not isinstance(status, dict) or (code in ok if ok is not None else not code):
            return None
        message = str(status.get("error_message") or code)
        if code in rate or rate_words(message):
            return RateLimited(message)
        return BadResponse(f"{vendor} error {code}: {message}")

    return check


_coingecko_status = _status_error("CoinGecko", rate=(429,))


def _coingecko_error(data: Any) -> PollFailure | None:
    # {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit..."}}
    # or {"error": "coin not found"}
    failure = _coingecko_status(data)
    if failure is None and isinstance(data, dict) and isinstance(data.get("error"), str):
        return BadResponse(f"CoinGecko error: {data['error']}")
    return failure


def _error_field(vendor: str, *, alone: bool = False) -> ErrorCheck:
    """An error in an ``error`` field (Coinpaprika, CoinCap, CoinAPI); with ``alone`` only a
    body without ``data``."""

    def check(data: Any) -> PollFailure | None:
        if not isinstance(data, dict) or "error" not in data or (alone and "data" in data):
            return None
        if vendor == "Coinpaprika" and not isinstance(data["error"], str):
            return None
        message = str(data["error"])
        if rate_words(message):
            return RateLimited(message)
        return BadResponse(f"{vendor} error: {message}" if vendor == "Coinpaprika" else message)

    return check


def _cryptocompare_error(data: Any) -> PollFailure | None:
    # errors come with HTTP 200: {"Response": "Error", "Message": "...", "Type": 99, ...}
    if isinstance(data, dict) and data.get("Response") == "Error":
        message = str(data.get("Message") or "error")
        if data.get("Type") == 99 or rate_words(message):
            return RateLimited(message)
        return BadResponse(f"CryptoCompare error: {message}")
    return None


def _histominute(adapter: SpecAdapter, data: Any, ctx: ParseContext) -> PollData:
    bars = as_list(as_dict(as_dict(data, "body").get("Data"), "Data").get("Data"), "Data.Data")
    if not bars:
        raise BadResponse("no minute bars")
    last = as_dict(bars[-1], "bar")
    symbol = ctx.options.get("symbol", "BTC")
    quote = ctx.quote(symbol, last.get("close"), observed_at=opt_float(last.get("time")))
    return PollData(quotes=(quote,), items=len(bars))


#: the one-coin answers are the list answers' rows (see ``replace`` below)
_PAPRIKA = QuoteSpec(
    "coinpaprika_tickers",
    "``/v1/tickers``: every coin; matched on the Coinpaprika id (symbols are ambiguous).",
    symbol="id",
    match="coinpaprika",
    price="quotes.USD.price",
    change="quotes.USD.percent_change_24h",
    cap="quotes.USD.market_cap",
    volume="quotes.USD.volume_24h",
    observed=iso("last_updated"),
    label="symbol",
    error=_error_field("Coinpaprika"),
)
_COINCAP = QuoteSpec(
    "coincap_assets",
    '``/assets?ids=``: ``{"data": [{"id", "symbol", "priceUsd", ...}], "timestamp": ms}``.',
    rows=("data",),
    symbol="id",
    match="coincap",
    id_key="coincap",
    price="priceUsd",
    change="changePercent24Hr",
    cap="marketCapUsd",
    volume="volumeUsd24Hr",
    observed=body_ms("timestamp"),
    label="symbol",
    error=_error_field("CoinCap", alone=True),
)


def _one(of: QuoteSpec, family: str, doc: str) -> QuoteSpec:
    """The one-coin answer whose rows look like the list answer ``of``'s."""
    return replace(
        of, family=family, doc=doc, single=True, symbol="symbol", match=None, id_key=None
    )


#: one row per aggregator API family
SPECS: dict[str, QuoteSpec] = {
    "CoinGeckoMarkets": QuoteSpec(
        "coingecko_markets",
        "``/coins/markets``: a list of coins with price, market cap, volume, 24 h change.",
        symbol="id",
        match="coingecko",
        id_key="coingecko",
        price="current_price",
        change="price_change_percentage_24h",
        cap="market_cap",
        volume="total_volume",
        observed=iso("last_updated"),
        error=_coingecko_error,
    ),
    "CoinGeckoSimple": QuoteSpec(
        "coingecko_simple",
        '``/simple/price``: ``{"bitcoin": {"usd": 1, "usd_24h_change": 2, ...}}``.',
        symbol=None,
        match="coingecko",
        id_key="coingecko",
        price="usd",
        need="usd",
        change="usd_24h_change",
        cap="usd_market_cap",
        volume="usd_24h_vol",
        observed=secs("last_updated_at"),
        error=_coingecko_error,
    ),
    "CoinGeckoCoin": QuoteSpec(
        "coingecko_coin",
        "``/coins/{id}``: one coin with nested ``market_data`` (and community data).",
        single=True,
        price="market_data.current_price.usd",
        change="market_data.price_change_percentage_24h",
        cap="market_data.market_cap.usd",
        volume="market_data.total_volume.usd",
        observed=iso("last_updated"),
        error=_coingecko_error,
    ),
    "CoinMarketCapQuotes": QuoteSpec(
        "coinmarketcap_quotes",
        "``/v1/cryptocurrency/quotes/latest?symbol=``: ``data`` keyed by symbol, ``quote.USD`` "
        "(v2: a list per symbol). Error codes 1008: minute limit, 1009: daily, 1010: monthly, "
        "1011: IP limit.",
        rows=("data",),
        symbol=None,
        match="symbol",
        unwrap=True,
        price="quote.USD.price",
        change="quote.USD.percent_change_24h",
        cap="quote.USD.market_cap",
        volume="quote.USD.volume_24h",
        observed=iso("quote.USD.last_updated"),
        error=_status_error("CoinMarketCap", rate=(1008, 1009, 1010, 1011), ok=(0, "0", None)),
    ),
    "CryptoComparePriceMultiFull": QuoteSpec(
        "cryptocompare_pricemultifull",
        "``/data/pricemultifull``: ``RAW[FROM][USD]`` with PRICE, CHANGEPCT24HOUR, MKTCAP.",
        rows=("RAW",),
        symbol=None,
        match="symbol",
        need="USD",
        price="USD.PRICE",
        change="USD.CHANGEPCT24HOUR",
        cap="USD.MKTCAP",
        volume=either("USD.TOTALVOLUME24HTO", "USD.VOLUME24HOURTO"),
        observed=secs("USD.LASTUPDATE"),
        error=_cryptocompare_error,
    ),
    "CryptoCompareHistoMinute": QuoteSpec(
        "cryptocompare_histominute",
        "``/data/v2/histominute``: the last minute bar's close (``options.symbol``).",
        error=_cryptocompare_error,
        parse=_histominute,
    ),
    "CoinpaprikaTickers": _PAPRIKA,
    "CoinpaprikaTicker": _one(_PAPRIKA, "coinpaprika_ticker", "``/v1/tickers/{id}``: one coin."),
    "CoinCapAssets": _COINCAP,
    "CoinCapAsset": _one(
        _COINCAP, "coincap_asset", '``/assets/{id}``: ``{"data": {...}, "timestamp": ms}``.'
    ),
    "CoinLoreTickers": QuoteSpec(
        "coinlore_tickers",
        '``/api/tickers/``: ``{"data": [{"id": "90", "symbol": "BTC", "price_usd": "..."}]}``.',
        rows=("data",),
        symbol="id",
        match="coinlore",
        loose_ids=True,
        price="price_usd",
        change="percent_change_24h",
        cap="market_cap_usd",
        volume="volume24",
    ),
    "MessariMetrics": QuoteSpec(
        "messari_metrics",
        "``/api/v1/assets/{slug}/metrics``: ``data.market_data.price_usd``.",
        rows=("data",),
        single=True,
        price="market_data.price_usd",
        change="market_data.percent_change_usd_last_24_hours",
        cap="marketcap.current_marketcap_usd",
        volume=either("market_data.real_volume_last_24_hours", "market_data.volume_last_24_hours"),
        error=_status_error("Messari", rate=(429,)),
    ),
    "CoinApiExchangeRate": QuoteSpec(
        "coinapi_exchangerate",
        '``/v1/exchangerate/BTC/USD``: ``{"time", "asset_id_base", "asset_id_quote", "rate"}``.',
        single=True,
        symbol="asset_id_base",
        currency=("asset_id_quote", ("USD", "USDT")),
        price="rate",
        observed=iso("time"),
        error=_error_field("CoinAPI"),
    ),
    "DiaQuotation": QuoteSpec(
        "dia_quotation",
        '``/v1/assetQuotation/{chain}/{address}``: ``{"Symbol", "Price", "PriceYesterday", ...}``.',
        single=True,
        symbol="Symbol",
        price="Price",
        change=change_vs("Price", "PriceYesterday"),
        volume="VolumeYesterdayUSD",
        observed=iso("Time"),
    ),
    "CoinStatsCoins": QuoteSpec(
        "coinstats_coins",
        '``/public/v1/coins``: ``{"coins": [{"symbol", "price", "priceChange1d", ...}]}``.',
        rows=("coins",),
        match="symbol",
        change="priceChange1d",
        cap="marketCap",
        volume="volume",
    ),
    "DefiLlamaPrices": QuoteSpec(
        "defillama_prices",
        '``coins.llama.fi/prices/current/{coins}``: ``{"coins": {"coingecko:bitcoin": {...}}}``.',
        rows=("coins",),
        symbol=None,
        match="llama",
        observed=secs("timestamp"),
    ),
}

_CLASSES = {name: adapter_class(name, spec) for name, spec in SPECS.items()}
CoinApiExchangeRate = _CLASSES["CoinApiExchangeRate"]
CoinCapAsset = _CLASSES["CoinCapAsset"]
CoinCapAssets = _CLASSES["CoinCapAssets"]
CoinGeckoCoin = _CLASSES["CoinGeckoCoin"]
CoinGeckoMarkets = _CLASSES["CoinGeckoMarkets"]
CoinGeckoSimple = _CLASSES["CoinGeckoSimple"]
CoinLoreTickers = _CLASSES["CoinLoreTickers"]
CoinMarketCapQuotes = _CLASSES["CoinMarketCapQuotes"]
CoinStatsCoins = _CLASSES["CoinStatsCoins"]
CoinpaprikaTicker = _CLASSES["CoinpaprikaTicker"]
CoinpaprikaTickers = _CLASSES["CoinpaprikaTickers"]
CryptoCompareHistoMinute = _CLASSES["CryptoCompareHistoMinute"]
CryptoComparePriceMultiFull = _CLASSES["CryptoComparePriceMultiFull"]
DefiLlamaPrices = _CLASSES["DefiLlamaPrices"]
DiaQuotation = _CLASSES["DiaQuotation"]
MessariMetrics = _CLASSES["MessariMetrics"]
