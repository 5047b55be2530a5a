"""Exchanges: Binance (and its API clones), Kraken, Coinbase, Bitfinex, OKX, Bybit, KuCoin,
Gate.io, HTX, Bitstamp, Gemini, Bitget, Crypto.com.

Exchanges quote against USDT or USD; both count as USD for consensus (the outlier rule absorbs
the small gap). A 24 h change given as a fraction (0.0123) is converted to percent (1.23).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..catalog import Asset
from ..errors import BadResponse, PollFailure, RateLimited
from ..quotes import PollData, PriceQuote
from .base import Adapter, ParseContext, as_dict, as_list, opt_float

__all__ = [
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


def _pct(fraction: Any) -> float | None:
    value = opt_float(fraction)
    return None if value is None else value * 100


def _change(last: Any, open_: Any) -> float | None:
    now, then = opt_float(last), opt_float(open_)
    return (now / then - 1) * 100 if now and then else None


def _ms(value: Any) -> float | None:
    ms = opt_float(value)
    return ms / 1000 if ms else None


def _rate_words(text: str) -> bool:
    lowered = text.lower()
    return "rate limit" in lowered or "too many" in lowered or "ratelimit" in lowered


class _Exchange(Adapter):
    yields_prices: ClassVar[bool] = True
    #: pair format, e.g. "{s}USDT"; Asset.ids[family_key] overrides the base symbol
    pair_format: ClassVar[str] = "{s}USDT"
    family_key: ClassVar[str | None] = None

    def pair(self, asset: Asset) -> str | None:
        base = (asset.id_for(self.family_key) if self.family_key else None) or asset.symbol
        return self.pair_format.format(s=base, lower=base.lower())

    def rows_to_quotes(
        self, ctx: ParseContext, rows: list[Any], name_key: str, build: Any
    ) -> tuple[PriceQuote, ...]:
        index = self.pair_index(ctx.assets)
        quotes = []
        for row in rows:
            if isinstance(row, dict):
                symbol = index.get(str(row.get(name_key, "")).upper())
                if symbol:
                    quotes.append(build(symbol, row))
        return tuple(quotes)


def _binance_error(data: Any) -> PollFailure | None:
    # {"code": -1121, "msg": "Invalid symbol."}; -1003: too many requests
    if isinstance(data, dict) and "code" in data and "msg" in data:
        message = f"{data['code']}: {data['msg']}"
        return RateLimited(message) if data["code"] == -1003 else BadResponse(message)
    return None


class Binance24hr(_Exchange):
    """``/api/v3/ticker/24hr?symbols=[...]``: lastPrice, priceChangePercent, quoteVolume."""

    family = "binance_24hr"

    def error_in(self, data: Any) -> PollFailure | None:
        return _binance_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(data, "tickers")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "symbol",
            lambda s, r: ctx.quote(
                s,
                r.get("lastPrice"),
                change_24h=r.get("priceChangePercent"),
                volume_24h=r.get("quoteVolume"),
                observed_at=_ms(r.get("closeTime")),
            ),
        )
        return PollData(quotes=quotes, items=len(rows))


class BinancePrice(_Exchange):
    """``/api/v3/ticker/price``: ``[{"symbol": "BTCUSDT", "price": "..."}]`` (Binance.US: USD)."""

    family = "binance_price"

    def error_in(self, data: Any) -> PollFailure | None:
        return _binance_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(data, "prices")
        usdt = self.rows_to_quotes(ctx, rows, "symbol", lambda s, r: ctx.quote(s, r.get("price")))
        if usdt:
            return PollData(quotes=usdt, items=len(rows))
        # Binance.US lists USD pairs
        index = {f"{a.symbol}USD": a.symbol for a in ctx.assets}
        quotes = tuple(
            ctx.quote(index[r["symbol"]], r.get("price"))
            for r in rows
            if isinstance(r, dict) and r.get("symbol") in index
        )
        return PollData(quotes=quotes, items=len(rows))


class BinanceKlines(_Exchange):
    """``/api/v3/klines``: ``[[open_time, open, high, low, close, volume, close_time, ...]]``."""

    family = "binance_klines"

    def error_in(self, data: Any) -> PollFailure | None:
        return _binance_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        bars = as_list(data, "klines")
        if not bars:
            raise BadResponse("no klines")
        last = as_list(bars[-1], "kline")
        quote = ctx.quote(ctx.options.get("symbol", "BTC"), last[4], observed_at=_ms(last[6]))
        return PollData(quotes=(quote,), items=len(bars))


class KrakenTicker(_Exchange):
    """``/0/public/Ticker?pair=XBTUSD,...``: errors in ``error`` with HTTP 200; results keyed by
    Kraken's canonical pair name (XXBTZUSD for XBTUSD), ``c[0]`` is the last trade."""

    family = "kraken_ticker"
    pair_format = "{s}USD"
    family_key = "kraken"

    def error_in(self, data: Any) -> PollFailure | None:
        errors = data.get("error") if isinstance(data, dict) else None
        if errors:
            message = "; ".join(str(e) for e in errors)
            if "Rate limit" in message or "Too many requests" in message:
                return RateLimited(message)
            return BadResponse(f"Kraken error: {message}")
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
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
                quotes.append(
                    ctx.quote(
                        symbol,
                        last,
                        change_24h=_change(last, row.get("o")),
                        volume_24h=vol * avg if vol and avg else None,
                    )
                )
        return PollData(quotes=tuple(quotes), items=len(result))


class CoinbaseStats(_Exchange):
    """``/products/stats``: ``{"BTC-USD": {"stats_24hour": {"open", "last", "volume"}, ...}}``."""

    family = "coinbase_stats"
    pair_format = "{s}-USD"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            message = data["message"]
            return RateLimited(message) if _rate_words(message) else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        products = as_dict(data, "products")
        quotes = []
        for pair, symbol in self.pair_index(ctx.assets).items():
            row = products.get(pair)
            stats = row.get("stats_24hour") if isinstance(row, dict) else None
            if isinstance(stats, dict) and "last" in stats:
                last, volume = opt_float(stats.get("last")), opt_float(stats.get("volume"))
                quotes.append(
                    ctx.quote(
                        symbol,
                        stats.get("last"),
                        change_24h=_change(stats.get("last"), stats.get("open")),
                        volume_24h=last * volume if last and volume else None,
                    )
                )
        return PollData(quotes=tuple(quotes), items=len(products))


class CoinbaseSpot(_Exchange):
    """``api.coinbase.com/v2/prices/BTC-USD/spot``: ``{"data": {"base", "currency", "amount"}}``."""

    family = "coinbase_spot"

    def error_in(self, data: Any) -> PollFailure | None:
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors:
            first = errors[0] if isinstance(errors, list) and errors else {}
            message = str(first.get("message", errors)) if isinstance(first, dict) else str(first)
            return RateLimited(message) if _rate_words(message) else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        row = as_dict(as_dict(data, "body").get("data"), "data")
        if row.get("currency") != "USD":
            raise BadResponse(f"unexpected currency {row.get('currency')!r}")
        symbol = str(row.get("base", ""))
        if symbol not in {a.symbol for a in ctx.assets}:
            return PollData()
        return PollData(quotes=(ctx.quote(symbol, row.get("amount")),), items=1)


class BitfinexTickers(_Exchange):
    """``/v2/tickers?symbols=tBTCUSD,...``: arrays ``[SYMBOL, BID, BID_SIZE, ASK, ASK_SIZE,
    DAILY_CHANGE, DAILY_CHANGE_RELATIVE, LAST_PRICE, VOLUME, HIGH, LOW]``; errors are
    ``["error", code, "message"]``."""

    family = "bitfinex_tickers"
    family_key = "bitfinex"

    def pair(self, asset: Asset) -> str | None:
        return asset.id_for("bitfinex")

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, list) and data and data[0] == "error":
            message = " ".join(str(x) for x in data[1:])
            # 11010: ratelimit
            if 11010 in data or _rate_words(message):
                return RateLimited(message)
            return BadResponse(f"Bitfinex error: {message}")
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(data, "tickers")
        index = self.pair_index(ctx.assets)
        quotes = []
        for row in rows:
            if isinstance(row, list) and len(row) >= 11 and str(row[0]).upper() in index:
                last, volume = opt_float(row[7]), opt_float(row[8])
                quotes.append(
                    ctx.quote(
                        index[str(row[0]).upper()],
                        row[7],
                        change_24h=_pct(row[6]),
                        volume_24h=last * volume if last and volume else None,
                    )
                )
        return PollData(quotes=tuple(quotes), items=len(rows))


class OkxTickers(_Exchange):
    """``/api/v5/market/tickers?instType=SPOT``: ``{"code": "0", "data": [{"instId": "BTC-USDT",
    "last", "open24h", "volCcy24h", "ts"}]}``; a non-zero code is an error (50011: rate)."""

    family = "okx_tickers"
    pair_format = "{s}-USDT"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and str(data.get("code", "0")) != "0":
            message = f"{data.get('code')}: {data.get('msg')}"
            return RateLimited(message) if data.get("code") == "50011" else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(as_dict(data, "body").get("data"), "data")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "instId",
            lambda s, r: ctx.quote(
                s,
                r.get("last"),
                change_24h=_change(r.get("last"), r.get("open24h")),
                volume_24h=r.get("volCcy24h"),
                observed_at=_ms(r.get("ts")),
            ),
        )
        return PollData(quotes=quotes, items=len(rows))


class BybitTickers(_Exchange):
    """``/v5/market/tickers?category=spot``: ``{"retCode": 0, "result": {"list": [{"symbol",
    "lastPrice", "price24hPcnt" (fraction), "turnover24h"}]}}``; retCode 10006: rate limit."""

    family = "bybit_tickers"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and data.get("retCode") not in (0, None):
            message = f"{data.get('retCode')}: {data.get('retMsg')}"
            return RateLimited(message) if data.get("retCode") == 10006 else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        body = as_dict(data, "body")
        rows = as_list(as_dict(body.get("result"), "result").get("list"), "result.list")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "symbol",
            lambda s, r: ctx.quote(
                s,
                r.get("lastPrice"),
                change_24h=_pct(r.get("price24hPcnt")),
                volume_24h=r.get("turnover24h"),
                observed_at=_ms(body.get("time")),
            ),
        )
        return PollData(quotes=quotes, items=len(rows))


class KucoinAllTickers(_Exchange):
    """``/api/v1/market/allTickers``: ``{"code": "200000", "data": {"time", "ticker": [{"symbol":
    "BTC-USDT", "last", "changeRate" (fraction), "volValue"}]}}``."""

    family = "kucoin_alltickers"
    pair_format = "{s}-USDT"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and str(data.get("code", "200000")) != "200000":
            message = f"{data.get('code')}: {data.get('msg')}"
            return RateLimited(message) if data.get("code") == "429000" else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        inner = as_dict(as_dict(data, "body").get("data"), "data")
        rows = as_list(inner.get("ticker"), "data.ticker")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "symbol",
            lambda s, r: ctx.quote(
                s,
                r.get("last"),
                change_24h=_pct(r.get("changeRate")),
                volume_24h=r.get("volValue"),
                observed_at=_ms(inner.get("time")),
            ),
        )
        return PollData(quotes=quotes, items=len(rows))


class GateioTickers(_Exchange):
    """``/api/v4/spot/tickers``: ``[{"currency_pair": "BTC_USDT", "last", "change_percentage",
    "quote_volume"}]``; errors ``{"label": "TOO_MANY_REQUESTS", "message": ...}``."""

    family = "gateio_tickers"
    pair_format = "{s}_USDT"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and "label" in data:
            message = f"{data['label']}: {data.get('message')}"
            if data["label"] == "TOO_MANY_REQUESTS":
                return RateLimited(message)
            return BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(data, "tickers")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "currency_pair",
            lambda s, r: ctx.quote(
                s,
                r.get("last"),
                change_24h=r.get("change_percentage"),
                volume_24h=r.get("quote_volume"),
            ),
        )
        return PollData(quotes=quotes, items=len(rows))


class HtxTickers(_Exchange):
    """``/market/tickers``: ``{"status": "ok", "data": [{"symbol": "btcusdt", "open", "close",
    "vol"}]}``; errors ``{"status": "error", "err-code", "err-msg"}`` with HTTP 200."""

    family = "htx_tickers"
    pair_format = "{lower}usdt"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and data.get("status") == "error":
            message = f"{data.get('err-code')}: {data.get('err-msg')}"
            if "limit" in str(data.get("err-code")) or _rate_words(message):
                return RateLimited(message)
            return BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        body = as_dict(data, "body")
        rows = as_list(body.get("data"), "data")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "symbol",
            lambda s, r: ctx.quote(
                s,
                r.get("close"),
                change_24h=_change(r.get("close"), r.get("open")),
                volume_24h=r.get("vol"),
                observed_at=_ms(body.get("ts")),
            ),
        )
        return PollData(quotes=quotes, items=len(rows))


class BitstampTickers(_Exchange):
    """``/api/v2/ticker/``: ``[{"pair": "BTC/USD", "last", "open_24", "percent_change_24",
    "volume", "timestamp"}]``."""

    family = "bitstamp_tickers"
    pair_format = "{s}/USD"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and data.get("status") == "error":
            message = str(data.get("reason") or data.get("code") or "error")
            return RateLimited(message) if _rate_words(message) else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(data, "tickers")

        def build(symbol: str, r: dict[str, Any]) -> PriceQuote:
            last, volume = opt_float(r.get("last")), opt_float(r.get("volume"))
            return ctx.quote(
                symbol,
                r.get("last"),
                change_24h=r.get("percent_change_24"),
                volume_24h=last * volume if last and volume else None,
                observed_at=opt_float(r.get("timestamp")),
            )

        return PollData(quotes=self.rows_to_quotes(ctx, rows, "pair", build), items=len(rows))


class GeminiPricefeed(_Exchange):
    """``/v1/pricefeed``: ``[{"pair": "BTCUSD", "price", "percentChange24h" (fraction)}]``;
    errors ``{"result": "error", "reason": "RateLimited", "message"}``."""

    family = "gemini_pricefeed"
    pair_format = "{s}USD"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and data.get("result") == "error":
            message = f"{data.get('reason')}: {data.get('message')}"
            return (
                RateLimited(message)
                if data.get("reason") == "RateLimited"
                else BadResponse(message)
            )
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(data, "pricefeed")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "pair",
            lambda s, r: ctx.quote(s, r.get("price"), change_24h=_pct(r.get("percentChange24h"))),
        )
        return PollData(quotes=quotes, items=len(rows))


class BitgetTickers(_Exchange):
    """``/api/v2/spot/market/tickers``: ``{"code": "00000", "data": [{"symbol": "BTCUSDT",
    "lastPr", "change24h" (fraction), "quoteVolume", "ts"}]}`` (the price is ``lastPr``)."""

    family = "bitget_tickers"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and str(data.get("code", "00000")) != "00000":
            message = f"{data.get('code')}: {data.get('msg')}"
            # 429: too many requests
            return RateLimited(message) if str(data.get("code")) == "429" else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(as_dict(data, "body").get("data"), "data")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "symbol",
            lambda s, r: ctx.quote(
                s,
                r.get("lastPr"),
                change_24h=_pct(r.get("change24h")),
                volume_24h=r.get("quoteVolume"),
                observed_at=_ms(r.get("ts")),
            ),
        )
        return PollData(quotes=quotes, items=len(rows))


class CryptoComTickers(_Exchange):
    """``/exchange/v1/public/get-tickers``: ``{"code": 0, "result": {"data": [{"i": "BTC_USDT",
    "a" (last), "c" (24 h change, fraction), "vv" (USD volume), "t" (ms)}]}}``."""

    family = "cryptocom_tickers"
    pair_format = "{s}_USDT"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and data.get("code") not in (0, None):
            message = f"{data.get('code')}: {data.get('message')}"
            # 42901: too many requests
            return RateLimited(message) if data.get("code") == 42901 else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        result = as_dict(as_dict(data, "body").get("result"), "result")
        rows = as_list(result.get("data"), "result.data")
        quotes = self.rows_to_quotes(
            ctx,
            rows,
            "i",
            lambda s, r: ctx.quote(
                s,
                r.get("a"),
                change_24h=_pct(r.get("c")),
                volume_24h=r.get("vv"),
                observed_at=_ms(r.get("t")),
            ),
        )
        return PollData(quotes=quotes, items=len(rows))
