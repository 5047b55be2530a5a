"""Market-data aggregators: CoinGecko, CoinMarketCap, CryptoCompare, Coinpaprika, CoinCap,
CoinLore, Messari, CoinAPI, DIA, CoinStats, DefiLlama prices."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import BadResponse, PollFailure, RateLimited
from ..quotes import PollData, PriceQuote
from .base import Adapter, ParseContext, as_dict, as_list, opt_float, parse_iso_time

__all__ = [
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


def _by_id(ctx: ParseContext, key: str) -> dict[str, str]:
    return {i: a.symbol for a in ctx.assets if (i := a.id_for(key))}


def _symbols(ctx: ParseContext) -> set[str]:
    return {a.symbol for a in ctx.assets}


def _rate_limit_words(text: str) -> bool:
    lowered = text.lower()
    return "rate limit" in lowered or "too many" in lowered or "exceeded" in lowered


class _PriceAdapter(Adapter):
    yields_prices: ClassVar[bool] = True


class CoinGeckoMarkets(_PriceAdapter):
    """``/coins/markets``: a list of coins with price, market cap, volume, 24 h change."""

    family = "coingecko_markets"
    id_key = "coingecko"

    def error_in(self, data: Any) -> PollFailure | None:
        return _coingecko_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        ids = _by_id(ctx, "coingecko")
        quotes = [
            ctx.quote(
                ids[row["id"]],
                row.get("current_price"),
                change_24h=row.get("price_change_percentage_24h"),
                market_cap=row.get("market_cap"),
                volume_24h=row.get("total_volume"),
                observed_at=parse_iso_time(row.get("last_updated")),
            )
            for row in as_list(data, "coins/markets")
            if isinstance(row, dict) and row.get("id") in ids
        ]
        return PollData(quotes=tuple(quotes), items=len(data))


def _coingecko_error(data: Any) -> PollFailure | None:
    # {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit..."}}
    # or {"error": "coin not found"}
    if isinstance(data, dict):
        status = data.get("status")
        if isinstance(status, dict) and status.get("error_code"):
            message = str(status.get("error_message") or status["error_code"])
            if status.get("error_code") == 429 or _rate_limit_words(message):
                return RateLimited(message)
            return BadResponse(f"CoinGecko error {status['error_code']}: {message}")
        if isinstance(data.get("error"), str):
            return BadResponse(f"CoinGecko error: {data['error']}")
    return None


class CoinGeckoSimple(_PriceAdapter):
    """``/simple/price``: ``{"bitcoin": {"usd": 1, "usd_24h_change": 2, ...}}``."""

    family = "coingecko_simple"
    id_key = "coingecko"

    def error_in(self, data: Any) -> PollFailure | None:
        return _coingecko_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        quotes = []
        for coin_id, symbol in _by_id(ctx, "coingecko").items():
            row = as_dict(data, "simple/price").get(coin_id)
            if not isinstance(row, dict) or "usd" not in row:
                continue
            quotes.append(
                ctx.quote(
                    symbol,
                    row["usd"],
                    change_24h=row.get("usd_24h_change"),
                    market_cap=row.get("usd_market_cap"),
                    volume_24h=row.get("usd_24h_vol"),
                    observed_at=opt_float(row.get("last_updated_at")),
                )
            )
        return PollData(quotes=tuple(quotes), items=len(data))


class CoinGeckoCoin(_PriceAdapter):
    """``/coins/{id}``: one coin with nested ``market_data`` (and community data)."""

    family = "coingecko_coin"

    def error_in(self, data: Any) -> PollFailure | None:
        return _coingecko_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        coin = as_dict(data, "coin")
        symbol = str(coin.get("symbol", "")).upper()
        if symbol not in _symbols(ctx):
            return PollData()
        market = as_dict(coin.get("market_data"), "market_data")

        def usd(key: str) -> Any:
            return as_dict(market.get(key), key).get("usd")

        quote = ctx.quote(
            symbol,
            usd("current_price"),
            change_24h=market.get("price_change_percentage_24h"),
            market_cap=usd("market_cap"),
            volume_24h=usd("total_volume"),
            observed_at=parse_iso_time(coin.get("last_updated")),
        )
        return PollData(quotes=(quote,), items=1)


class CoinMarketCapQuotes(_PriceAdapter):
    """``/v1/cryptocurrency/quotes/latest?symbol=``: ``data`` keyed by symbol, ``quote.USD``."""

    family = "coinmarketcap_quotes"

    def error_in(self, data: Any) -> PollFailure | None:
        status = data.get("status") if isinstance(data, dict) else None
        if isinstance(status, dict) and status.get("error_code") not in (0, "0", None):
            message = str(status.get("error_message") or status.get("error_code"))
            # 1008: minute limit, 1009: daily, 1010: monthly, 1011: IP limit
            if status.get("error_code") in (1008, 1009, 1010, 1011) or _rate_limit_words(message):
                return RateLimited(message)
            return BadResponse(f"CoinMarketCap error {status.get('error_code')}: {message}")
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_dict(as_dict(data, "body").get("data"), "data")
        quotes = []
        for symbol in _symbols(ctx):
            row = rows.get(symbol)
            if isinstance(row, list):  # v2 answers a list per symbol
                row = row[0] if row else None
            if not isinstance(row, dict):
                continue
            usd = as_dict(as_dict(row.get("quote"), "quote").get("USD"), "quote.USD")
            quotes.append(
                ctx.quote(
                    symbol,
                    usd.get("price"),
                    change_24h=usd.get("percent_change_24h"),
                    market_cap=usd.get("market_cap"),
                    volume_24h=usd.get("volume_24h"),
                    observed_at=parse_iso_time(usd.get("last_updated")),
                )
            )
        return PollData(quotes=tuple(quotes), items=len(rows))


def _cryptocompare_error(data: Any) -> PollFailure | None:
    # errors come with HTTP 200: {"Response": "Error", "Message": "...", "Type": 99, ...}
    if isinstance(data, dict) and data.get("Response") == "Error":
        message = str(data.get("Message") or "error")
        if data.get("Type") == 99 or _rate_limit_words(message):
            return RateLimited(message)
        return BadResponse(f"CryptoCompare error: {message}")
    return None


class CryptoComparePriceMultiFull(_PriceAdapter):
    """``/data/pricemultifull``: ``RAW[FROM][USD]`` with PRICE, CHANGEPCT24HOUR, MKTCAP."""

    family = "cryptocompare_pricemultifull"

    def error_in(self, data: Any) -> PollFailure | None:
        return _cryptocompare_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        raw = as_dict(as_dict(data, "body").get("RAW"), "RAW")
        quotes = []
        for symbol in _symbols(ctx):
            row = raw.get(symbol)
            usd = row.get("USD") if isinstance(row, dict) else None
            if not isinstance(usd, dict):
                continue
            quotes.append(
                ctx.quote(
                    symbol,
                    usd.get("PRICE"),
                    change_24h=usd.get("CHANGEPCT24HOUR"),
                    market_cap=usd.get("MKTCAP"),
                    volume_24h=usd.get("TOTALVOLUME24HTO") or usd.get("VOLUME24HOURTO"),
                    observed_at=opt_float(usd.get("LASTUPDATE")),
                )
            )
        return PollData(quotes=tuple(quotes), items=len(raw))


class CryptoCompareHistoMinute(_PriceAdapter):
    """``/data/v2/histominute``: the last minute bar's close (``options.symbol``)."""

    family = "cryptocompare_histominute"

    def error_in(self, data: Any) -> PollFailure | None:
        return _cryptocompare_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        bars = as_list(as_dict(as_dict(data, "body").get("Data"), "Data").get("Data"), "Data.Data")
        if not bars:
            raise BadResponse("no minute bars")
        last = as_dict(bars[-1], "bar")
        symbol = ctx.options.get("symbol", "BTC")
        quote = ctx.quote(symbol, last.get("close"), observed_at=opt_float(last.get("time")))
        return PollData(quotes=(quote,), items=len(bars))


def _paprika_row(ctx: ParseContext, row: dict[str, Any]) -> PriceQuote:
    usd = as_dict(as_dict(row.get("quotes"), "quotes").get("USD"), "quotes.USD")
    return ctx.quote(
        str(row["symbol"]),
        usd.get("price"),
        change_24h=usd.get("percent_change_24h"),
        market_cap=usd.get("market_cap"),
        volume_24h=usd.get("volume_24h"),
        observed_at=parse_iso_time(row.get("last_updated")),
    )


def _paprika_error(data: Any) -> PollFailure | None:
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        if _rate_limit_words(data["error"]):
            return RateLimited(data["error"])
        return BadResponse(f"Coinpaprika error: {data['error']}")
    return None


class CoinpaprikaTickers(_PriceAdapter):
    """``/v1/tickers``: every coin; matched on the Coinpaprika id (symbols are ambiguous)."""

    family = "coinpaprika_tickers"

    def error_in(self, data: Any) -> PollFailure | None:
        return _paprika_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        ids = _by_id(ctx, "coinpaprika")
        rows = as_list(data, "tickers")
        quotes = [_paprika_row(ctx, r) for r in rows if isinstance(r, dict) and r.get("id") in ids]
        return PollData(quotes=tuple(quotes), items=len(rows))


class CoinpaprikaTicker(_PriceAdapter):
    """``/v1/tickers/{id}``: one coin."""

    family = "coinpaprika_ticker"

    def error_in(self, data: Any) -> PollFailure | None:
        return _paprika_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        row = as_dict(data, "ticker")
        if row.get("symbol") not in _symbols(ctx):
            return PollData()
        return PollData(quotes=(_paprika_row(ctx, row),), items=1)


def _coincap_row(ctx: ParseContext, row: dict[str, Any], timestamp_ms: Any) -> PriceQuote:
    ts = opt_float(timestamp_ms)
    return ctx.quote(
        str(row["symbol"]),
        row.get("priceUsd"),
        change_24h=row.get("changePercent24Hr"),
        market_cap=row.get("marketCapUsd"),
        volume_24h=row.get("volumeUsd24Hr"),
        observed_at=ts / 1000 if ts else None,
    )


def _coincap_error(data: Any) -> PollFailure | None:
    if isinstance(data, dict) and "error" in data and "data" not in data:
        message = str(data["error"])
        return RateLimited(message) if _rate_limit_words(message) else BadResponse(message)
    return None


class CoinCapAssets(_PriceAdapter):
    """``/assets?ids=``: ``{"data": [{"id", "symbol", "priceUsd", ...}], "timestamp": ms}``."""

    family = "coincap_assets"
    id_key = "coincap"

    def error_in(self, data: Any) -> PollFailure | None:
        return _coincap_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        body = as_dict(data, "body")
        ids = _by_id(ctx, "coincap")
        rows = as_list(body.get("data"), "data")
        quotes = [
            _coincap_row(ctx, r, body.get("timestamp"))
            for r in rows
            if isinstance(r, dict) and r.get("id") in ids
        ]
        return PollData(quotes=tuple(quotes), items=len(rows))


class CoinCapAsset(_PriceAdapter):
    """``/assets/{id}``: ``{"data": {...}, "timestamp": ms}``."""

    family = "coincap_asset"

    def error_in(self, data: Any) -> PollFailure | None:
        return _coincap_error(data)

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        body = as_dict(data, "body")
        row = as_dict(body.get("data"), "data")
        if row.get("symbol") not in _symbols(ctx):
            return PollData()
        return PollData(quotes=(_coincap_row(ctx, row, body.get("timestamp")),), items=1)


class CoinLoreTickers(_PriceAdapter):
    """``/api/tickers/``: ``{"data": [{"id": "90", "symbol": "BTC", "price_usd": "..."}]}``."""

    family = "coinlore_tickers"

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        body = as_dict(data, "body")
        ids = _by_id(ctx, "coinlore")
        rows = as_list(body.get("data"), "data")
        quotes = [
            ctx.quote(
                ids[str(r["id"])],
                r.get("price_usd"),
                change_24h=r.get("percent_change_24h"),
                market_cap=r.get("market_cap_usd"),
                volume_24h=r.get("volume24"),
            )
            for r in rows
            if isinstance(r, dict) and str(r.get("id")) in ids
        ]
        return PollData(quotes=tuple(quotes), items=len(rows))


class MessariMetrics(_PriceAdapter):
    """``/api/v1/assets/{slug}/metrics``: ``data.market_data.price_usd``."""

    family = "messari_metrics"

    def error_in(self, data: Any) -> PollFailure | None:
        status = data.get("status") if isinstance(data, dict) else None
        if isinstance(status, dict) and status.get("error_code"):
            message = str(status.get("error_message") or status["error_code"])
            if status["error_code"] == 429 or _rate_limit_words(message):
                return RateLimited(message)
            return BadResponse(f"Messari error {status['error_code']}: {message}")
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        asset = as_dict(as_dict(data, "body").get("data"), "data")
        symbol = str(asset.get("symbol", "")).upper()
        if symbol not in _symbols(ctx):
            return PollData()
        market = as_dict(asset.get("market_data"), "market_data")
        cap = asset.get("marketcap")
        quote = ctx.quote(
            symbol,
            market.get("price_usd"),
            change_24h=market.get("percent_change_usd_last_24_hours"),
            market_cap=cap.get("current_marketcap_usd") if isinstance(cap, dict) else None,
            volume_24h=market.get("real_volume_last_24_hours")
            or market.get("volume_last_24_hours"),
        )
        return PollData(quotes=(quote,), items=1)


class CoinApiExchangeRate(_PriceAdapter):
    """``/v1/exchangerate/BTC/USD``: ``{"time", "asset_id_base", "asset_id_quote", "rate"}``."""

    family = "coinapi_exchangerate"

    def error_in(self, data: Any) -> PollFailure | None:
        if isinstance(data, dict) and "error" in data:
            message = str(data["error"])
            return RateLimited(message) if _rate_limit_words(message) else BadResponse(message)
        return None

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        row = as_dict(data, "body")
        if row.get("asset_id_quote") not in ("USD", "USDT"):
            raise BadResponse(f"unexpected quote currency {row.get('asset_id_quote')!r}")
        symbol = str(row.get("asset_id_base", ""))
        if symbol not in _symbols(ctx):
            return PollData()
        quote = ctx.quote(symbol, row.get("rate"), observed_at=parse_iso_time(row.get("time")))
        return PollData(quotes=(quote,), items=1)


class DiaQuotation(_PriceAdapter):
    """``/v1/assetQuotation/{chain}/{address}``: ``{"Symbol", "Price", "PriceYesterday", ...}``."""

    family = "dia_quotation"

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        row = as_dict(data, "body")
        symbol = str(row.get("Symbol", ""))
        if symbol not in _symbols(ctx):
            return PollData()
        price, yesterday = opt_float(row.get("Price")), opt_float(row.get("PriceYesterday"))
        change = (price / yesterday - 1) * 100 if price and yesterday else None
        quote = ctx.quote(
            symbol,
            row.get("Price"),
            change_24h=change,
            volume_24h=row.get("VolumeYesterdayUSD"),
            observed_at=parse_iso_time(row.get("Time")),
        )
        return PollData(quotes=(quote,), items=1)


class CoinStatsCoins(_PriceAdapter):
    """``/public/v1/coins``: ``{"coins": [{"symbol", "price", "priceChange1d", ...}]}``."""

    family = "coinstats_coins"

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        rows = as_list(as_dict(data, "body").get("coins"), "coins")
        wanted = _symbols(ctx)
        quotes = [
            ctx.quote(
                r["symbol"],
                r.get("price"),
                change_24h=r.get("priceChange1d"),
                market_cap=r.get("marketCap"),
                volume_24h=r.get("volume"),
            )
            for r in rows
            if isinstance(r, dict) and r.get("symbol") in wanted
        ]
        return PollData(quotes=tuple(quotes), items=len(rows))


class DefiLlamaPrices(_PriceAdapter):
    """``coins.llama.fi/prices/current/{coins}``: ``{"coins": {"coingecko:bitcoin": {...}}}``."""

    family = "defillama_prices"

    def parse_json(self, data: Any, ctx: ParseContext) -> PollData:
        coins = as_dict(as_dict(data, "body").get("coins"), "coins")
        quotes = []
        for coin, symbol in _by_id(ctx, "llama").items():
            row = coins.get(coin)
            if isinstance(row, dict):
                quotes.append(
                    ctx.quote(symbol, row.get("price"), observed_at=opt_float(row.get("timestamp")))
                )
        return PollData(quotes=tuple(quotes), items=len(coins))
