"""Exchanges: Binance (and its API clones), Kraken, Coinbase, Bitfinex, OKX, Bybit, KuCoin,
Gate.io, HTX, Bitstamp, Gemini, Bitget, Crypto.com.

Exchanges quote against USDT or USD; both count as USD for consensus (the outlier rule absorbs
the small gap). A 24 h change given as a fraction (0.0123) is converted to percent (1.23).

Each exchange is one :class:`~.specs.QuoteSpec` row in :data:`SPECS` (the class names stay,
made from the rows); the odd answers (klines, Kraken, Coinbase spot, Bitfinex arrays) name
their own ``parse``.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadResponse, PollFailure, RateLimited
from ..quotes import PollData
from .base import ParseContext, as_dict, as_list, opt_float
from .specs import (
    ErrorRule,
    QuoteSpec,
    SpecAdapter,
    adapter_class,
    body_ms,
    change_vs,
    fraction,
    ms,
    notional,
    secs,
)

__all__ = [
    "SPECS",
    "Binance24hr",
    "BinanceKlines",
    "BinancePrice",
    "BitfinexTickers",
    "BitgetTickers",
    "BitstampTickers",
    "BybitTickers",
    "CoinbaseSpot",
    "CoinbaseStats",
    "CryptoComTickers",
    "GateioTickers",
    "GeminiPricefeed",
    "HtxTickers",
    "KrakenTicker",
    "KucoinAllTickers",
    "OkxTickers",
]


def _rate_words(text: str) -> bool:
    lowered = text.lower()
    return "rate limit" in lowered or "too many" in lowered or "ratelimit" in lowered


def _ms(value: Any) -> float | None:
    ms_ = opt_float(value)
    return ms_ / 1000 if ms_ else None


# -- the escape hatches: answers that are not a list or map of rows, and odd error shapes ------
def _klines(adapter: SpecAdapter, data: Any, ctx: ParseContext) -> PollData:
    bars = as_list(data, "klines")
    if not bars:
        raise BadResponse("no klines")
    last = as_list(bars[-1], "kline")
    quote = ctx.quote(ctx.options.get("symbol", "BTC"), last[4], observed_at=_ms(last[6]))
    return PollData(quotes=(quote,), items=len(bars))


def _kraken_error(data: Any) -> PollFailure | None:
    errors = data.get("error") if isinstance(data, dict) else None
    if errors:
        message = "; ".join(str(e) for e in (errors if isinstance(errors, list) else [errors]))
        if "Rate limit" in message or "Too many requests" in message:
            return RateLimited(message)
        return BadResponse(f"Kraken error: {message}")
    return None


def _kraken(adapter: SpecAdapter, data: Any, ctx: ParseContext) -> PollData:
    result = as_dict(as_dict(data, "body").get("result"), "result")
    names: dict[str, str] = {}
    for asset in ctx.assets:
        base = asset.id_for("kraken") or asset.symbol
        names[f"{base}USD"] = names[f"X{base}ZUSD"] = asset.symbol
    quotes = []
    for name, row in result.items():
        symbol = names.get(name)
        if symbol and isinstance(row, dict):
            last = as_list(row.get("c"), "c")[0]
            volume = as_list(row.get("v", [None, None]), "v")[-1]
            vwap = as_list(row.get("p", [None, None]), "p")[-1]
            vol, avg = opt_float(volume), opt_float(vwap)
            # no change_24h: "o" is today's opening price (since 00:00 UTC), not the
            # price 24 h ago, and the ticker has no true 24 h reference
            quotes.append(ctx.quote(symbol, last, volume_24h=vol * avg if vol and avg else None))
    return PollData(quotes=tuple(quotes), items=len(result))


def _coinbase_error(data: Any) -> PollFailure | None:
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        message = data["message"]
        return RateLimited(message) if _rate_words(message) else BadResponse(message)
    return None


def _coinbase_spot_error(data: Any) -> PollFailure | None:
    errors = data.get("errors") if isinstance(data, dict) else None
    if errors:
        first = errors[0] if isinstance(errors, list) and errors else {}
        message = str(first.get("message", errors)) if isinstance(first, dict) else str(first)
        return RateLimited(message) if _rate_words(message) else BadResponse(message)
    return None


def _bitfinex_error(data: Any) -> PollFailure | None:
    if isinstance(data, list) and data and data[0] == "error":
        message = " ".join(str(x) for x in data[1:])
        # 11010: ratelimit
        if 11010 in data or _rate_words(message):
            return RateLimited(message)
        return BadResponse(f"Bitfinex error: {message}")
    return None


def _bitfinex(adapter: SpecAdapter, data: Any, ctx: ParseContext) -> PollData:
    rows = as_list(data, "tickers")
    index = adapter.pair_index(ctx.assets)
    quotes = []
    for row in rows:
        if isinstance(row, list) and len(row) >= 11 and str(row[0]).upper() in index:
            last, volume = opt_float(row[7]), opt_float(row[8])
            change = opt_float(row[6])
            quotes.append(
                ctx.quote(
                    index[str(row[0]).upper()],
                    row[7],
                    change_24h=None if change is None else change * 100,
                    volume_24h=last * volume if last and volume else None,
                )
            )
    return PollData(quotes=tuple(quotes), items=len(rows))


def _htx_error(data: Any) -> PollFailure | None:
    if isinstance(data, dict) and data.get("status") == "error":
        message = f"{data.get('err-code')}: {data.get('err-msg')}"
        if "limit" in str(data.get("err-code")) or _rate_words(message):
            return RateLimited(message)
        return BadResponse(message)
    return None


def _bitstamp_error(data: Any) -> PollFailure | None:
    if isinstance(data, dict) and data.get("status") == "error":
        message = str(data.get("reason") or data.get("code") or "error")
        return RateLimited(message) if _rate_words(message) else BadResponse(message)
    return None


#: {"code": -1121, "msg": "Invalid symbol."}; -1003: too many requests
_BINANCE_ERROR = ErrorRule("code", ("code", "msg"), present=("code", "msg"), rate=(-1003,))

#: one row per exchange API family
SPECS: dict[str, QuoteSpec] = {
    "Binance24hr": QuoteSpec(
        "binance_24hr",
        "``/api/v3/ticker/24hr?symbols=[...]``: lastPrice, priceChangePercent, quoteVolume.",
        price="lastPrice",
        change="priceChangePercent",
        volume="quoteVolume",
        observed=ms("closeTime"),
        error=_BINANCE_ERROR,
    ),
    "BinancePrice": QuoteSpec(
        "binance_price",
        '``/api/v3/ticker/price``: ``[{"symbol": "BTCUSDT", "price": "..."}]`` (Binance.US: USD).',
        fallback_pair="{s}USD",
        error=_BINANCE_ERROR,
    ),
    "BinanceKlines": QuoteSpec(
        "binance_klines",
        "``/api/v3/klines``: ``[[open_time, open, high, low, close, volume, close_time, ...]]``.",
        error=_BINANCE_ERROR,
        parse=_klines,
    ),
    "KrakenTicker": QuoteSpec(
        "kraken_ticker",
        "``/0/public/Ticker?pair=XBTUSD,...``: errors in ``error`` with HTTP 200; results keyed by "
        "Kraken's canonical pair name (XXBTZUSD for XBTUSD), ``c[0]`` is the last trade. No 24 h "
        "change: ``o`` is today's opening price (00:00 UTC), so the quote leaves ``change_24h`` "
        "out (None) and Kraken does not enter the median of changes. One unknown pair fails the "
        "whole request (EQuery:Unknown asset pair): only coins with a Kraken asset are asked for.",
        pair="{s}USD",
        pair_key="kraken",
        pair_required=True,
        error=_kraken_error,
        parse=_kraken,
    ),
    "CoinbaseStats": QuoteSpec(
        "coinbase_stats",
        '``/products/stats``: ``{"BTC-USD": {"stats_24hour": {"open", "last", "volume"}, ...}}``.',
        symbol=None,
        price="stats_24hour.last",
        need="stats_24hour.last",
        change=change_vs("stats_24hour.last", "stats_24hour.open"),
        volume=notional("stats_24hour.last", "stats_24hour.volume"),
        pair="{s}-USD",
        error=_coinbase_error,
    ),
    "CoinbaseSpot": QuoteSpec(
        "coinbase_spot",
        '``api.coinbase.com/v2/prices/BTC-USD/spot``: ``{"data": {"base", "currency", "amount"}}``.',
        rows=("data",),
        single=True,
        symbol="base",
        price="amount",
        currency=("currency", ("USD",)),
        error=_coinbase_spot_error,
    ),
    "BitfinexTickers": QuoteSpec(
        "bitfinex_tickers",
        "``/v2/tickers?symbols=tBTCUSD,...``: arrays ``[SYMBOL, BID, BID_SIZE, ASK, ASK_SIZE, "
        "DAILY_CHANGE, DAILY_CHANGE_RELATIVE, LAST_PRICE, VOLUME, HIGH, LOW]``; errors are "
        '``["error", code, "message"]``.',
        pair="{s}",
        pair_key="bitfinex",
        pair_required=True,
        error=_bitfinex_error,
        parse=_bitfinex,
    ),
    "OkxTickers": QuoteSpec(
        "okx_tickers",
        '``/api/v5/market/tickers?instType=SPOT``: ``{"code": "0", "data": [{"instId": '
        '"BTC-USDT", "last", "open24h", "volCcy24h", "ts"}]}``; a non-zero code is an error '
        "(50011: rate).",
        rows=("data",),
        symbol="instId",
        price="last",
        change=change_vs("last", "open24h"),
        volume="volCcy24h",
        observed=ms("ts"),
        pair="{s}-USDT",
        error=ErrorRule("code", ("code", "msg"), ok=("0",), text=True, rate=("50011",)),
    ),
    "BybitTickers": QuoteSpec(
        "bybit_tickers",
        '``/v5/market/tickers?category=spot``: ``{"retCode": 0, "result": {"list": [{"symbol", '
        '"lastPrice", "price24hPcnt" (fraction), "turnover24h"}]}}``; retCode 10006: rate limit. '
        'The per-IP limit (600 requests/5 s) answers HTTP 403 "access too frequent": wait 10 min.',
        rows=("result", "list"),
        price="lastPrice",
        change=fraction("price24hPcnt"),
        volume="turnover24h",
        observed=body_ms("time"),
        error=ErrorRule("retCode", ("retCode", "retMsg"), ok=(0, None), rate=(10006,)),
        ban_statuses={403: 600.0},
    ),
    "KucoinAllTickers": QuoteSpec(
        "kucoin_alltickers",
        '``/api/v1/market/allTickers``: ``{"code": "200000", "data": {"time", "ticker": '
        '[{"symbol": "BTC-USDT", "last", "changeRate" (fraction), "volValue"}]}}``.',
        rows=("data", "ticker"),
        price="last",
        change=fraction("changeRate"),
        volume="volValue",
        observed=body_ms("data.time"),
        pair="{s}-USDT",
        error=ErrorRule("code", ("code", "msg"), ok=("200000",), text=True, rate=("429000",)),
    ),
    "GateioTickers": QuoteSpec(
        "gateio_tickers",
        '``/api/v4/spot/tickers``: ``[{"currency_pair": "BTC_USDT", "last", "change_percentage", '
        '"quote_volume"}]``; errors ``{"label": "TOO_MANY_REQUESTS", "message": ...}``.',
        symbol="currency_pair",
        price="last",
        change="change_percentage",
        volume="quote_volume",
        pair="{s}_USDT",
        error=ErrorRule(
            "label", ("label", "message"), present=("label",), rate=("TOO_MANY_REQUESTS",)
        ),
    ),
    "HtxTickers": QuoteSpec(
        "htx_tickers",
        '``/market/tickers``: ``{"status": "ok", "data": [{"symbol": "btcusdt", "open", "close", '
        '"vol"}]}``; errors ``{"status": "error", "err-code", "err-msg"}`` with HTTP 200.',
        rows=("data",),
        price="close",
        change=change_vs("close", "open"),
        volume="vol",
        observed=body_ms("ts"),
        pair="{lower}usdt",
        error=_htx_error,
    ),
    "BitstampTickers": QuoteSpec(
        "bitstamp_tickers",
        '``/api/v2/ticker/``: ``[{"pair": "BTC/USD", "last", "open_24", "percent_change_24", '
        '"volume", "timestamp"}]``.',
        symbol="pair",
        price="last",
        change="percent_change_24",
        volume=notional("last", "volume"),
        observed=secs("timestamp"),
        pair="{s}/USD",
        error=_bitstamp_error,
    ),
    "GeminiPricefeed": QuoteSpec(
        "gemini_pricefeed",
        '``/v1/pricefeed``: ``[{"pair": "BTCUSD", "price", "percentChange24h" (fraction)}]``; '
        'errors ``{"result": "error", "reason": "RateLimited", "message"}``.',
        symbol="pair",
        change=fraction("percentChange24h"),
        pair="{s}USD",
        error=ErrorRule(
            "reason", ("reason", "message"), flag=("result", "error"), rate=("RateLimited",)
        ),
    ),
    "BitgetTickers": QuoteSpec(
        "bitget_tickers",
        '``/api/v2/spot/market/tickers``: ``{"code": "00000", "data": [{"symbol": "BTCUSDT", '
        '"lastPr", "change24h" (fraction), "quoteVolume", "ts"}]}`` (the price is ``lastPr``); '
        "code 429: too many requests.",
        rows=("data",),
        price="lastPr",
        change=fraction("change24h"),
        volume="quoteVolume",
        observed=ms("ts"),
        error=ErrorRule("code", ("code", "msg"), ok=("00000",), text=True, rate=("429", 429)),
    ),
    "CryptoComTickers": QuoteSpec(
        "cryptocom_tickers",
        '``/exchange/v1/public/get-tickers``: ``{"code": 0, "result": {"data": [{"i": "BTC_USDT", '
        '"a" (last), "c" (24 h change, fraction), "vv" (USD volume), "t" (ms)}]}}``; code 42901: '
        "too many requests.",
        rows=("result", "data"),
        symbol="i",
        price="a",
        change=fraction("c"),
        volume="vv",
        observed=ms("t"),
        pair="{s}_USDT",
        error=ErrorRule("code", ("code", "message"), ok=(0, None), rate=(42901,)),
    ),
}

_CLASSES = {name: adapter_class(name, spec) for name, spec in SPECS.items()}
Binance24hr = _CLASSES["Binance24hr"]
BinanceKlines = _CLASSES["BinanceKlines"]
BinancePrice = _CLASSES["BinancePrice"]
BitfinexTickers = _CLASSES["BitfinexTickers"]
BitgetTickers = _CLASSES["BitgetTickers"]
BitstampTickers = _CLASSES["BitstampTickers"]
BybitTickers = _CLASSES["BybitTickers"]
CoinbaseSpot = _CLASSES["CoinbaseSpot"]
CoinbaseStats = _CLASSES["CoinbaseStats"]
CryptoComTickers = _CLASSES["CryptoComTickers"]
GateioTickers = _CLASSES["GateioTickers"]
GeminiPricefeed = _CLASSES["GeminiPricefeed"]
HtxTickers = _CLASSES["HtxTickers"]
KrakenTicker = _CLASSES["KrakenTicker"]
KucoinAllTickers = _CLASSES["KucoinAllTickers"]
OkxTickers = _CLASSES["OkxTickers"]
