"""Every API family's answer, in the provider's real shape, rendered from the simulated world.

``RENDERERS[family](ctx)`` is a normal answer; ``error_answer(family)`` the provider's own error
body sent with HTTP 200 (the case a naive client takes for data); ``rate_limit_answer(family)``
its 429 body.

Like the adapters (one :class:`~..adapters.specs.QuoteSpec` row per price provider), the price
answers are data: ``_TICKERS`` (exchanges) and ``_COINS`` (aggregators) hold one row template
per family, written by one renderer each where the adapter's spec reads them (the rows path,
a list or an object keyed by the coin's id, or one row). Only the answers whose adapters name
their own ``parse`` (CryptoCompare's minute bars, Binance klines, ...) keep a function.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import orjson

from ..adapters import adapter_for
from ..adapters.specs import QuoteSpec, SpecAdapter
from ..catalog import Asset, Provider
from .world import MarketWorld, NewsDesk

__all__ = [
    "RENDERERS",
    "Answer",
    "RenderContext",
    "auth_error_answer",
    "error_answer",
    "json_answer",
    "quota_answer",
    "rate_limit_answer",
]

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class RenderContext:
    provider: Provider
    assets: list[Asset]
    world: MarketWorld
    news: NewsDesk
    now: float
    #: the price this provider reports for a symbol (faults may distort it)
    price: Callable[[str], float]
    feed_hosts: dict[str, str]
    #: a drift fault to render (see faults.DRIFT_MODES), if any
    drift: str | None = None
    #: the plan the request named in its path (CryptoPanic), if any
    plan: str | None = None

    def change(self, symbol: str) -> float:
        return (self.price(symbol) / self.world.open_24h(symbol) - 1) * 100

    def open_24h(self, symbol: str) -> float:
        # the world's open, not derived from a (possibly faulted) price: never zero
        return self.world.open_24h(symbol)

    def pair(self, asset: Asset) -> str | None:
        return adapter_for(self.provider.family).pair(asset)


def json_answer(value: Any, status: int = 200) -> Answer:
    return Answer(status, JSON, orjson.dumps(value))


_json = json_answer


def _s(value: float) -> str:
    """A number as exchanges send it: a string."""
    return f"{value:.10g}"


def _nz(value: float) -> float:
    """A divisor that is never zero (a faulted price of 0 must still render)."""
    return value or 1.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(ts: float) -> int:
    return int(ts * 1000)


# -- aggregators: the one escape hatch (the adapter's spec names its own parse too) -------
def _cryptocompare_histo(c: RenderContext) -> Answer:
    symbol = c.provider.options.get("symbol", "BTC")
    p = c.price(symbol)
    minute = int(c.now // 60 * 60)
    bars = [
        {
            "time": minute - 60,
            "high": p * 1.001,
            "low": p * 0.999,
            "open": p,
            "volumefrom": 12.5,
            "volumeto": 12.5 * p,
            "close": p * 0.9995,
            "conversionType": "direct",
            "conversionSymbol": "",
        },
        {
            "time": minute,
            "high": p * 1.0005,
            "low": p * 0.9995,
            "open": p * 0.9995,
            "volumefrom": 3.1,
            "volumeto": 3.1 * p,
            "close": p,
            "conversionType": "direct",
            "conversionSymbol": "",
        },
    ]
    return _json(
        {
            "Response": "Success",
            "Message": "",
            "HasWarning": False,
            "Type": 100,
            "RateLimit": {},
            "Data": {"Aggregated": False, "TimeFrom": minute - 60, "TimeTo": minute, "Data": bars},
        }
    )


# -- exchanges ----------------------------------------------------------------------------
def _pairs(c: RenderContext) -> list[tuple[Asset, str]]:
    return [(a, pair) for a in c.assets if (pair := c.pair(a))]


def _binance_klines(c: RenderContext) -> Answer:
    symbol = c.provider.options.get("symbol", "BTC")
    p = c.price(symbol)
    minute = int(c.now // 60 * 60) * 1000
    bars = [
        [
            minute - 60_000,
            _s(p),
            _s(p * 1.001),
            _s(p * 0.999),
            _s(p * 0.9998),
            "12.3",
            minute - 1,
            _s(12.3 * p),
            900,
            "6.1",
            _s(6.1 * p),
            "0",
        ],
        [
            minute,
            _s(p * 0.9998),
            _s(p * 1.0004),
            _s(p * 0.9996),
            _s(p),
            "3.4",
            minute + 59_999,
            _s(3.4 * p),
            250,
            "1.7",
            _s(1.7 * p),
            "0",
        ],
    ]
    return _json(bars)


_KRAKEN_LEGACY = {"XBT", "ETH", "LTC", "XRP"}


def _kraken(c: RenderContext) -> Answer:
    result = {}
    for a in c.assets:
        base = a.id_for("kraken")
        if not base:
            continue
        name = f"X{base}ZUSD" if base in _KRAKEN_LEGACY else f"{base}USD"
        p, o = c.price(a.symbol), c.open_24h(a.symbol)
        volume = c.world.volume(a.symbol) * 0.03 / _nz(p)
        result[name] = {
            "a": [_s(p * 1.0001), "1", "1.000"],
            "b": [_s(p * 0.9999), "2", "2.000"],
            "c": [_s(p), "0.00500000"],
            "v": [_s(volume / 2), _s(volume)],
            "p": [_s(p * 0.999), _s(p * 0.998)],
            "t": [12000, 25000],
            "l": [_s(min(p, o) * 0.99), _s(min(p, o) * 0.98)],
            "h": [_s(max(p, o) * 1.01), _s(max(p, o) * 1.02)],
            # today's opening price (00:00 UTC), not the price 24 h ago: the drift fault
            # makes the gap large, as after a move early in the UTC day
            "o": _s(o * (0.8 if c.drift == "midnight_open" else 1.0)),
        }
    return _json({"error": [], "result": result})


def _coinbase_stats(c: RenderContext) -> Answer:
    products: dict[str, Any] = {}
    for a, pair in _pairs(c):
        p, o = c.price(a.symbol), c.open_24h(a.symbol)
        products[pair] = {
            "stats_30day": {"volume": _s(c.world.volume(a.symbol) * 25 / _nz(p))},
            "stats_24hour": {
                "open": _s(o),
                "high": _s(max(p, o) * 1.01),
                "low": _s(min(p, o) * 0.99),
                "last": _s(p),
                "volume": _s(c.world.volume(a.symbol) * 0.08 / _nz(p)),
            },
        }
    products["USDT-USD"] = {
        "stats_24hour": {
            "open": "1.0001",
            "high": "1.0003",
            "low": "0.9998",
            "last": "1.0001",
            "volume": "90000000",
        }
    }
    return _json(products)


def _coinbase_spot(c: RenderContext) -> Answer:
    return _json({"data": {"amount": f"{c.price('BTC'):.2f}", "base": "BTC", "currency": "USD"}})


def _bitfinex(c: RenderContext) -> Answer:
    rows = []
    for a in c.assets:
        symbol = a.id_for("bitfinex")
        if not symbol:
            continue
        p, o = c.price(a.symbol), c.open_24h(a.symbol)
        rows.append(
            [
                symbol,
                p * 0.9999,
                12.5,
                p * 1.0001,
                9.1,
                p - o,
                round(p / o - 1, 4),
                p,
                c.world.volume(a.symbol) * 0.02 / _nz(p),
                max(p, o) * 1.01,
                min(p, o) * 0.99,
            ]
        )
    return _json(rows)


# -- rows as data: exchange tickers and aggregator coins -------------------------------------
@dataclass(frozen=True, slots=True)
class _Market:
    """One market's numbers, from which every row (an exchange's ticker, an aggregator's coin)
    is written."""

    pair: str  #: the market's name: the exchange's pair, or the aggregator's key for the coin
    p: float  #: the price now
    o: float  #: the price 24 h ago
    usd: float  #: the 24 h volume in USD (an exchange: its share of the world's)
    now: float
    asset: Asset | None = None
    rank: int = 1
    cap: float = 0.0
    supply: float = 0.0
    btc: float = 1.0  #: BTC's price (for prices in BTC)
    age: float = 0.0  #: how old the aggregator's numbers are (its ``last_updated``)

    def value(self, name: str) -> Any:
        """A row value by name. A number (``last``, ``cap``, ...; ``last*1.02`` scaled) is sent
        as a string; ``name#`` as a number, ``name#N`` rounded to N places, ``name~N`` as text
        with N decimals. Anything else is text (``symbol``, ``iso``, ``id@coingecko``, ...)."""
        numeric, hashed, places = name.partition("#")
        numeric, tilde, decimals = numeric.partition("~")
        base, star, factor = numeric.partition("*")
        numbers = self._numbers()
        if base not in numbers:
            return self._text(name)
        number = numbers[base] * float(factor) if star else numbers[base]
        if tilde:
            return f"{number:.{int(decimals)}f}"
        if not hashed:
            return _s(number)
        if not places:
            return number
        return round(number, int(places)) if int(places) else round(number)

    def _numbers(self) -> dict[str, float]:
        p, o = self.p, self.o
        return {
            "last": p,
            "open": o,
            "bid": p * 0.9999,
            "ask": p * 1.0001,
            "high": max(p, o) * 1.01,
            "low": min(p, o) * 0.99,
            "vwap": p * 0.999,
            "avg": p * 0.998,
            "diff": p - o,
            "change": (p / o - 1) * 100,
            "volume": self.usd,
            "qty": self.usd / _nz(p),
            "cap": self.cap,
            "supply": self.supply,
            "btc": p / _nz(self.btc),
        }

    def _text(self, name: str) -> Any:
        p, o, asset = self.p, self.o, self.asset
        if name.startswith("id@"):
            return asset.id_for(name[3:]) if asset else None
        updated = self.now - self.age
        return {
            "pair": self.pair,
            "pct2": f"{(p / o - 1) * 100:.2f}",
            "pct3": f"{(p / o - 1) * 100:.3f}",
            "frac4": f"{p / o - 1:.4f}",
            "frac5": f"{p / o - 1:.5f}",
            "ms": _ms(self.now),
            "ms$": str(_ms(self.now)),
            "s$": str(int(self.now)),
            "day_ms": _ms(self.now - 86400),
            "symbol": asset.symbol if asset else self.pair,
            "lower": (asset.symbol if asset else self.pair).lower(),
            "name": asset.name if asset else self.pair,
            "slug": (asset.name if asset else self.pair).lower(),
            "rank": self.rank,
            "rank$": str(self.rank),
            "iso": _iso(updated),
            "iso_s": _iso(updated).replace(".000", ""),
            "iso7": _iso(updated).replace("Z", "0000Z"),  # CoinAPI's 7 fraction digits
            "secs": int(updated),
            "money": f"{p:.2f}" if p > 1 else _s(p),
            "dollars": f"$ {p:,.2f}",
        }[name]


#: where an answer's envelope takes the answer time in milliseconds, seconds, ISO 8601
NOW_MS = "<now ms>"
NOW_S = "<now s>"
NOW_ISO = "<now iso>"


class _Fields:
    """A row template: ``key:name`` a :meth:`_Market.value`, ``key=json`` a constant,
    ``key%text`` a text with ``{name}`` values; a dotted key nests (``quotes.USD.price:last#``)."""

    __slots__ = ("fields",)

    def __init__(self, template: str) -> None:
        self.fields = [_split_field(f) for f in template.split()]

    def row(self, m: _Market, into: dict[str, Any] | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {} if into is None else into
        for path, sep, spec in self.fields:
            if sep == "=":
                value = orjson.loads(spec)
            elif sep == "%":
                value = spec.format_map(_Lookup(m))
            else:
                value = m.value(spec)
            inner = row
            for step in path[:-1]:
                inner = inner.setdefault(step, {})
            inner[path[-1]] = value
        return row


def _split_field(field: str) -> tuple[tuple[str, ...], str, str]:
    at = min(i for i in (field.find(sep) for sep in "=%:") if i >= 0)
    return tuple(field[:at].split(".")), field[at], field[at + 1 :]


class _Lookup(dict[str, Any]):
    def __init__(self, market: _Market) -> None:
        super().__init__()
        self.market = market

    def __missing__(self, key: str) -> Any:
        return self.market.value(key)


@dataclass(frozen=True, slots=True)
class _Tickers:
    """A venue's ticker answer as data: its share of the world's volume, its row (a
    :class:`_Fields` template), the envelope around the rows (they go where the adapter's spec
    reads them), and rows of markets we do not track, first."""

    share: float
    row: str
    envelope: Any = None
    others: tuple[Any, ...] = ()

    def render(self, c: RenderContext) -> Answer:
        fields = _Fields(self.row)
        rows = []
        for a, pair in _pairs(c):
            volume = c.world.volume(a.symbol) * self.share
            m = _Market(pair, c.price(a.symbol), c.open_24h(a.symbol), volume, c.now)
            rows.append(fields.row(m))
        body = _fill(self.envelope, c.now)
        path = _spec(c.provider.family).rows if body is not None else ()
        return _json(_put(body, path, [*self.others, *rows]))


@dataclass(frozen=True, slots=True)
class _Coins:
    """An aggregator's answer as data, laid out as its adapter's spec reads it: the rows at
    ``spec.rows``, a list or (``spec.symbol`` None) an object keyed by the coin's id
    (``spec.match``), or (``spec.single``) one row. ``row`` is a :class:`_Fields` template;
    ``age`` how old the numbers are; ``symbol`` the coin of a one-coin answer (else the first
    asset asked for); ``also`` more rows keyed the same at another path (path, template);
    ``decoy`` a coin we do not track that shares the first one's symbol, as overrides of its
    row (why the adapter matches on id)."""

    row: str
    envelope: Any = None
    age: float = 0.0
    symbol: str | None = None
    also: tuple[tuple[str, str], ...] = ()
    decoy: str | None = None

    def render(self, c: RenderContext) -> Answer:
        spec = _spec(c.provider.family)
        fields = _Fields(self.row)
        btc = c.world.price("BTC", c.now)

        def market(rank: int, a: Asset | None, key: str, symbol: str = "") -> _Market:
            symbol = a.symbol if a else symbol
            return _Market(
                key,
                c.price(symbol),
                c.open_24h(symbol),
                c.world.volume(symbol),
                c.now,
                asset=a,
                rank=rank,
                cap=c.world.market_cap(symbol, c.now),
                supply=c.world.supply(symbol),
                btc=btc,
                age=self.age,
            )

        body = _fill(self.envelope, c.now) or {}
        if spec.single:
            if self.symbol:  # always this coin, whatever was asked
                one = next((a for a in c.assets if a.symbol == self.symbol), None)
                m = market(1, one, self.symbol, self.symbol)
            else:
                m = market(1, c.assets[0], c.assets[0].symbol)
            return _json(_put(body, spec.rows, fields.row(m)))
        if spec.symbol is None:  # an object keyed by the coin's id
            keyed = spec.match not in (None, "symbol")
            markets = [
                market(rank, a, key)
                for rank, a in enumerate(c.assets, 1)
                if (key := a.id_for(spec.match) if keyed and spec.match else a.symbol)
            ]
            for path, template in self.also:
                extra = _Fields(template)
                _put(body, (path,), {m.pair: extra.row(m) for m in markets})
            return _json(_put(body, spec.rows, {m.pair: fields.row(m) for m in markets}))
        rows = [fields.row(market(rank, a, a.symbol)) for rank, a in enumerate(c.assets, 1)]
        if self.decoy and rows:
            rows.append(
                _Fields(self.decoy).row(
                    _Market("", 0, 1, 0, c.now), orjson.loads(orjson.dumps(rows[0]))
                )
            )
        return _json(_put(body, spec.rows, rows))


def _spec(family: str) -> QuoteSpec:
    """The adapter's spec: where it reads the rows is where the simulator writes them."""
    adapter = adapter_for(family)
    if not isinstance(adapter, SpecAdapter):
        raise TypeError(f"{family}: not a spec adapter")
    return adapter.spec


def _fill(template: Any, now: float) -> Any:
    if isinstance(template, str):
        return {NOW_MS: _ms(now), NOW_S: int(now), NOW_ISO: _iso(now)}.get(template, template)
    if isinstance(template, dict):
        return {k: _fill(v, now) for k, v in template.items()}
    return template


def _put(body: Any, path: tuple[str, ...], rows: Any) -> Any:
    if not path:
        return rows
    inner = body
    for step in path[:-1]:
        inner = inner.setdefault(step, {})
    inner[path[-1]] = rows
    return body


_TICKERS: dict[str, _Tickers] = {
    "binance_24hr": _Tickers(
        0.12,
        "symbol:pair priceChange:diff priceChangePercent:pct3 weightedAvgPrice:vwap "
        'prevClosePrice:open lastPrice:last lastQty="0.01000000" bidPrice:bid askPrice:ask '
        "openPrice:open highPrice:high lowPrice:low volume:qty quoteVolume:volume "
        "openTime:day_ms closeTime:ms firstId=3300000000 lastId=3301000000 count=1000000",
    ),
    "binance_price": _Tickers(
        0, "symbol:pair price:last", others=({"symbol": "ETHBTC", "price": "0.05271000"},)
    ),
    "okx_tickers": _Tickers(
        0.07,
        'instType="SPOT" instId:pair last:last lastSz="0.01" askPx:ask askSz="1.2" bidPx:bid '
        'bidSz="0.8" open24h:open high24h:high low24h:low volCcy24h:volume vol24h:qty ts:ms$ '
        "sodUtc0:open sodUtc8:open",
        {"code": "0", "msg": ""},
    ),
    "bybit_tickers": _Tickers(
        0.05,
        'symbol:pair bid1Price:bid bid1Size="0.5" ask1Price:ask ask1Size="0.7" lastPrice:last '
        "prevPrice24h:open price24hPcnt:frac4 highPrice24h:high lowPrice24h:low "
        "turnover24h:volume volume24h:qty usdIndexPrice:last",
        {
            "retCode": 0,
            "retMsg": "OK",
            "result": {"category": "spot"},
            "retExtInfo": {},
            "time": NOW_MS,
        },
    ),
    "kucoin_alltickers": _Tickers(
        0.04,
        "symbol:pair symbolName:pair buy:bid sell:ask changeRate:frac4 changePrice:diff "
        "high:high low:low vol:qty volValue:volume last:last averagePrice:avg "
        'takerFeeRate="0.001" makerFeeRate="0.001" takerCoefficient="1" makerCoefficient="1"',
        {"code": "200000", "data": {"time": NOW_MS}},
    ),
    "gateio_tickers": _Tickers(
        0.03,
        "currency_pair:pair last:last lowest_ask:ask highest_bid:bid change_percentage:pct2 "
        "base_volume:qty quote_volume:volume high_24h:high low_24h:low",
    ),
    "htx_tickers": _Tickers(
        0.03,
        "symbol:pair open:open# high:high# low:low# close:last# amount:qty# vol:volume# "
        "count=24424 bid:bid# bidSize=0.52 ask:ask# askSize=0.63",
        {"status": "ok", "ts": NOW_MS},
    ),
    "bitstamp_tickers": _Tickers(
        0.01,
        "timestamp:s$ open:open high:high low:low last:last volume:qty vwap:vwap bid:bid "
        'ask:ask side="1" open_24:open percent_change_24:pct2 market_type="SPOT" pair:pair '
        "market:pair",
    ),
    "gemini_pricefeed": _Tickers(
        0,
        "pair:pair price:last percentChange24h:frac4",
        others=({"pair": "BTCGBP", "price": "34000", "percentChange24h": "0.0000"},),
    ),
    "bitget_tickers": _Tickers(
        0.02,
        "open:open symbol:pair high24h:high low24h:low lastPr:last quoteVolume:volume "
        'baseVolume:qty usdtVolume:volume ts:ms$ bidPr:bid askPr:ask bidSz="1.1" askSz="0.9" '
        "openUtc:open changeUtc24h:frac5 change24h:frac5",
        {"code": "00000", "msg": "success", "requestTime": NOW_MS},
    ),
    "cryptocom_tickers": _Tickers(
        0.02,
        'i:pair h:high l:low a:last v:qty vv:volume c:frac4 b:bid k:ask oi="0" t:ms',
        {"id": -1, "method": "public/get-tickers", "code": 0, "result": {}},
    ),
}


_PAPRIKA = _Coins(
    "id:id@coinpaprika name:name symbol:symbol rank:rank circulating_supply:supply# "
    'total_supply:supply# beta_value=1.02 first_data_at="2010-07-17T00:00:00Z" '
    "last_updated:iso_s quotes.USD.price:last# quotes.USD.volume_24h:volume# "
    "quotes.USD.market_cap:cap#0 quotes.USD.percent_change_1h=0.12 "
    "quotes.USD.percent_change_24h:change#2 quotes.USD.percent_change_7d=-1.4",
    age=60,
    decoy='id="btc-bitcoin-token" name="Bitcoin\\u0020Token" rank=4120 quotes.USD.price=0.0042',
)
_COINCAP = _Coins(
    "id:id@coincap rank:rank$ symbol:symbol name:name supply:supply maxSupply=null "
    "marketCapUsd:cap volumeUsd24Hr:volume priceUsd:last changePercent24Hr:change "
    'vwap24Hr:vwap explorer="https://blockchain.info/"',
    {"timestamp": NOW_MS},
)

#: one row per aggregator API family, laid out as its spec in adapters/aggregators.py reads it
#: (the one-coin answers share the list answers' rows, as their specs do)
_COINS: dict[str, _Coins] = {
    "coingecko_markets": _Coins(
        "id:id@coingecko symbol:lower name:name "
        "image%https://assets.coingecko.com/coins/images/{rank}/large/{lower}.png "
        "current_price:last# market_cap:cap#0 market_cap_rank:rank total_volume:volume#0 "
        "high_24h:high# low_24h:low# price_change_24h:diff# price_change_percentage_24h:change#5 "
        "circulating_supply:supply# last_updated:iso "
        "price_change_percentage_24h_in_currency:change#5",
        age=30,
    ),
    "coingecko_simple": _Coins(
        "usd:last# usd_market_cap:cap# usd_24h_vol:volume# usd_24h_change:change# "
        "last_updated_at:secs",
        age=20,
    ),
    "coingecko_coin": _Coins(
        "id:id@coingecko symbol:lower name:name market_data.current_price.usd:last# "
        "market_data.current_price.eur:last*0.92# market_data.market_cap.usd:cap# "
        "market_data.total_volume.usd:volume# market_data.price_change_percentage_24h:change# "
        "community_data.twitter_followers=6500000 community_data.reddit_subscribers=6200000 "
        "last_updated:iso",
        age=15,
    ),
    "coinmarketcap_quotes": _Coins(
        "id:rank name:name symbol:symbol cmc_rank:rank last_updated:iso quote.USD.price:last# "
        "quote.USD.volume_24h:volume# quote.USD.percent_change_24h:change# "
        "quote.USD.market_cap:cap# quote.USD.last_updated:iso",
        {
            "status": {
                "timestamp": NOW_ISO,
                "error_code": 0,
                "error_message": None,
                "elapsed": 12,
                "credit_count": 1,
            }
        },
        age=40,
    ),
    "cryptocompare_pricemultifull": _Coins(
        'USD.TYPE="5" USD.MARKET="CCCAGG" USD.FROMSYMBOL:symbol USD.TOSYMBOL="USD" '
        "USD.PRICE:last# USD.LASTUPDATE:secs USD.CHANGEPCT24HOUR:change# "
        "USD.VOLUME24HOURTO:volume*0.4# USD.TOTALVOLUME24HTO:volume# USD.MKTCAP:cap#",
        age=5,
        also=(("DISPLAY", "USD.PRICE:dollars"),),
    ),
    "coinpaprika_tickers": _PAPRIKA,
    "coinpaprika_ticker": _PAPRIKA,
    "coincap_assets": _COINCAP,
    "coincap_asset": _COINCAP,
    "coinlore_tickers": _Coins(
        "id:id@coinlore symbol:symbol name:name nameid:id@coingecko rank:rank price_usd:money "
        'percent_change_24h:change~2 percent_change_1h="0.11" percent_change_7d="-2.30" '
        "price_btc:btc market_cap_usd:cap~2 volume24:volume# volume24a:volume*0.9# "
        'csupply:supply~2 tsupply:supply msupply=""',
        {"info": {"coins_num": 12742, "time": NOW_S}},
    ),
    "messari_metrics": _Coins(
        'id="1e31218a-e44e-4285-820c-8282ee222035" symbol:symbol name:name slug:slug '
        "market_data.price_usd:last# market_data.volume_last_24_hours:volume# "
        "market_data.real_volume_last_24_hours:volume*0.3# "
        "market_data.percent_change_usd_last_24_hours:change# "
        "marketcap.current_marketcap_usd:cap#",
        {"status": {"elapsed": 9, "timestamp": NOW_ISO}},
    ),
    "coinapi_exchangerate": _Coins(
        'time:iso7 asset_id_base:symbol asset_id_quote="USD" rate:last#', age=1, symbol="BTC"
    ),
    "dia_quotation": _Coins(
        'Symbol:symbol Name="Bitcoin" Address="0x0000000000000000000000000000000000000000" '
        'Blockchain="Bitcoin" Price:last# PriceYesterday:open# VolumeYesterdayUSD:volume# '
        f'Time:iso Source="diadata.org" Signature="0x{"ab" * 65}"',
        age=30,
        symbol="BTC",
    ),
    "coinstats_coins": _Coins(
        "id:id@coingecko icon%https://static.coinstats.app/coins/{lower}.png name:name "
        "symbol:symbol rank:rank price:last# priceBtc:btc# volume:volume# marketCap:cap# "
        "availableSupply:supply# totalSupply:supply# priceChange1h=0.2 priceChange1d:change#2 "
        "priceChange1w=-1.1",
    ),
    "defillama_prices": _Coins("price:last# symbol:symbol timestamp:secs confidence=0.99", age=10),
}


# -- news ----------------------------------------------------------------------------------
def _story_url(c: RenderContext, story_feed: str, number: int, slug: str) -> str:
    host = c.feed_hosts.get(story_feed, "news.example")
    return f"https://{host}/news/{number}/{slug}/"


def _feed(c: RenderContext) -> Answer:
    stories = c.news.stories(c.provider.id, c.now)
    name = escape(c.provider.name)
    if c.provider.feed_format == "atom":
        entries = "".join(
            f"<entry><id>tag:{c.provider.id},{s.number}</id><title>{escape(s.title)}</title>"
            f'<link rel="alternate" type="text/html" href="{escape(_story_url(c, s.feeds[0], s.number, s.slug))}'
            f'?utm_source={c.provider.id}"/>'
            f"<updated>{_iso(s.published_at)}</updated>"
            f'<content type="html">{escape("<p>" + escape(s.summary) + "</p>")}</content></entry>'
            for s in stories
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{name}</title>'
            f"<id>tag:{c.provider.id}</id><updated>{_iso(c.now)}</updated>{entries}</feed>"
        )
        return Answer(200, "application/atom+xml; charset=utf-8", body.encode())
    items = "".join(
        f"<item><title>{escape(s.title)}</title>"
        f"<link>{escape(_story_url(c, s.feeds[0], s.number, s.slug))}?utm_source={c.provider.id}&amp;utm_medium=rss</link>"
        f'<guid isPermaLink="false">{c.provider.id}-{s.number}</guid>'
        f"<pubDate>{format_datetime(datetime.fromtimestamp(s.published_at, UTC), usegmt=True)}</pubDate>"
        f"<description><![CDATA[<p>{escape(s.summary)}</p>]]></description></item>"
        for s in stories
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{name}</title><link>{escape(c.provider.base_url)}</link>"
        f"<description>{name} (simulated)</description>{items}</channel></rss>"
    )
    return Answer(200, "application/rss+xml; charset=utf-8", body.encode())


def _newsapi(c: RenderContext) -> Answer:
    stories = c.news.stories(c.provider.id, c.now)
    articles = [
        {
            "source": {"id": None, "name": "Pricewire Wire"},
            "author": "Staff",
            "title": s.title,
            "description": s.summary,
            "url": _story_url(c, s.feeds[0], s.number, s.slug),
            "urlToImage": None,
            "publishedAt": _iso(s.published_at).replace(".000", ""),
            "content": s.summary,
        }
        for s in stories
    ]
    return _json({"status": "ok", "totalResults": len(articles), "articles": articles})


def _cryptopanic(c: RenderContext) -> Answer:
    """Developer API v2: the Developer plan sends no ``url`` nor ``original_url`` (the post is
    linked by id and slug), higher plans send both; ``unusable_posts`` drops id and links."""
    stories = c.news.stories(c.provider.id, c.now)
    with_links = c.plan not in (None, "developer") and c.drift != "posts_without_url"
    results = []
    for s in stories:
        post: dict[str, Any] = {
            "id": 19_000_000 + s.number,
            "slug": s.slug,
            "title": s.title,
            "description": s.summary,
            "published_at": _iso(s.published_at),
            "created_at": _iso(s.published_at),
            "kind": "news",
        }
        if with_links:
            post["source"] = {
                "title": "Pricewire Wire",
                "region": "en",
                "domain": "pricewire.example",
                "type": "feed",
            }
            post["original_url"] = _story_url(c, s.feeds[0], s.number, s.slug)
            post["url"] = f"https://cryptopanic.com/news/{post['id']}/{s.slug}"
        if c.drift == "unusable_posts":
            post = {"title": s.title, "published_at": post["published_at"], "kind": "news"}
        results.append(post)
    return _json({"next": None, "previous": None, "results": results})


def _reddit(c: RenderContext) -> Answer:
    children = [
        {
            "kind": "t3",
            "data": {
                "title": f"Daily discussion #{i}",
                "permalink": f"/r/CryptoCurrency/comments/{i}/",
                "url": f"https://www.reddit.com/r/CryptoCurrency/comments/{i}/",
                "score": 10 * i,
                "created_utc": c.now - 600 * i,
            },
        }
        for i in range(1, 11)
    ]
    return _json(
        {
            "kind": "Listing",
            "data": {"after": "t3_x", "dist": 10, "children": children, "before": None},
        }
    )


# -- chain ----------------------------------------------------------------------------------
def _height(c: RenderContext, block_s: float = 12.0, base: int = 19_000_000) -> int:
    return base + int(c.now / block_s) % 5_000_000


def _evm_rpc(c: RenderContext) -> Answer:
    # eth_getBlockByNumber("latest", false): the head's number, time and base fee
    number = _height(c)
    base_fee = int((18 + 6 * math.sin(c.now / 600)) * 1e9)
    block = {
        "number": hex(number),
        "hash": "0x" + f"{number:016x}" * 4,
        "parentHash": "0x" + f"{number - 1:016x}" * 4,
        "timestamp": hex(int(c.now) - int(c.now) % 12),
        "baseFeePerGas": hex(base_fee),
        "gasLimit": hex(30_000_000),
        "gasUsed": hex(14_000_000),
        "miner": "0x" + "95" * 20,
        "transactions": ["0x" + f"{number:016x}{i:048x}" for i in range(3)],
    }
    return _json({"jsonrpc": "2.0", "id": 1, "result": block})


def _solana_rpc(c: RenderContext) -> Answer:
    return _json({"jsonrpc": "2.0", "result": 240_000_000 + int(c.now / 0.4) % 50_000_000, "id": 1})


def _tron_rpc(c: RenderContext) -> Answer:
    number = 58_000_000 + int(c.now / 3) % 5_000_000
    return _json(
        {
            "blockID": f"{number:016x}" + "ab" * 24,
            "block_header": {
                "raw_data": {
                    "number": number,
                    "txTrieRoot": "00" * 32,
                    "witness_address": "41" + "cd" * 20,
                    "parentHash": f"{number - 1:016x}" + "ef" * 24,
                    "version": 30,
                    "timestamp": _ms(c.now),
                },
                "witness_signature": "aa" * 65,
            },
            "transactions": [],
        }
    )


def _etherscan_price(c: RenderContext) -> Answer:
    symbol = c.provider.options.get("symbol", "ETH")
    p = c.price(symbol)
    return _json(
        {
            "status": "1",
            "message": "OK",
            "result": {
                "ethbtc": _s(p / c.world.price("BTC", c.now)),
                "ethbtc_timestamp": str(int(c.now - 20)),
                "ethusd": f"{p:.2f}",
                "ethusd_timestamp": str(int(c.now - 20)),
            },
        }
    )


def _etherscan_block(c: RenderContext) -> Answer:
    return _json({"jsonrpc": "2.0", "id": 83, "result": hex(_height(c))})


def _blockchair(c: RenderContext) -> Answer:
    symbol = c.provider.options.get("symbol", "BTC")
    data = {
        "blocks": 830_000,
        "best_block_height": _height(c, 600.0, 830_000) if symbol == "BTC" else _height(c),
        "market_price_usd": round(c.price(symbol), 2 if c.price(symbol) > 1 else 6),
        "market_price_btc": c.price(symbol) / c.world.price("BTC", c.now),
        "market_price_usd_change_24h_percentage": round(c.change(symbol), 4),
        "market_cap_usd": round(c.world.market_cap(symbol, c.now)),
    }
    context = {
        "code": 200,
        "source": "A",
        "state": data["best_block_height"],
        "time": 0.3,
        "request_cost": 1,
    }
    return _json({"data": data, "context": context})


def _ethplorer(c: RenderContext) -> Answer:
    return _json({"lastBlock": _height(c)})


def _esplora(c: RenderContext) -> Answer:
    return Answer(200, "text/plain", str(_height(c, 600.0, 830_000)).encode())


def _mempool(c: RenderContext) -> Answer:
    p = c.price("BTC")
    return _json(
        {"time": int(c.now - 5), "USD": round(p), "EUR": round(p * 0.92), "GBP": round(p * 0.79)}
    )


def _whale_alert(c: RenderContext) -> Answer:
    status = [
        {"blockchain": chain, "status": "connected", "symbols": [sym]}
        for chain, sym in (
            ("bitcoin", "btc"),
            ("ethereum", "eth"),
            ("tron", "trx"),
            ("ripple", "xrp"),
        )
    ]
    return _json({"result": "success", "blockchain_count": len(status), "status": status})


# -- sentiment, DeFi, probes -------------------------------------------------------------------
def _fear_greed(c: RenderContext) -> Answer:
    # follows BTC's 24 h change: up markets are greedy
    value = max(1, min(99, round(50 + c.change("BTC") * 6)))
    label = (
        "Extreme Fear"
        if value < 25
        else "Fear"
        if value < 45
        else "Neutral"
        if value <= 55
        else "Greed"
        if value < 75
        else "Extreme Greed"
    )
    row = {
        "value": str(value),
        "value_classification": label,
        "timestamp": str(int(c.now // 86400 * 86400)),
        "time_until_update": str(int(86400 - c.now % 86400)),
    }
    return _json({"name": "Fear and Greed Index", "data": [row], "metadata": {"error": None}})


def _defillama_chains(c: RenderContext) -> Answer:
    rows = [
        {
            "gecko_id": "ethereum",
            "tvl": 58e9,
            "tokenSymbol": "ETH",
            "cmcId": "1027",
            "name": "Ethereum",
            "chainId": 1,
        },
        {
            "gecko_id": "tron",
            "tvl": 8.1e9,
            "tokenSymbol": "TRX",
            "cmcId": "1958",
            "name": "Tron",
            "chainId": None,
        },
        {
            "gecko_id": "binancecoin",
            "tvl": 5.2e9,
            "tokenSymbol": "BNB",
            "cmcId": "1839",
            "name": "BSC",
            "chainId": 56,
        },
        {
            "gecko_id": "solana",
            "tvl": 4.3e9,
            "tokenSymbol": "SOL",
            "cmcId": "5426",
            "name": "Solana",
            "chainId": None,
        },
    ]
    return _json(rows)


def _defillama_stablecoins(c: RenderContext) -> Answer:
    assets = [
        {
            "id": "1",
            "name": "Tether",
            "symbol": "USDT",
            "gecko_id": "tether",
            "pegType": "peggedUSD",
            "priceSource": "defillama",
            "pegMechanism": "fiat-backed",
            "circulating": {"peggedUSD": 96e9},
            "price": 1.0003,
        },
        {
            "id": "2",
            "name": "USD Coin",
            "symbol": "USDC",
            "gecko_id": "usd-coin",
            "pegType": "peggedUSD",
            "priceSource": "defillama",
            "pegMechanism": "fiat-backed",
            "circulating": {"peggedUSD": 27e9},
            "price": 0.9999,
        },
    ]
    return _json({"peggedAssets": assets})


def _http_probe(c: RenderContext) -> Answer:
    return _json({"status": "ok", "service": c.provider.name, "time": int(c.now)})


def _graphql_probe(c: RenderContext) -> Answer:
    return _json({"data": {"_meta": {"block": {"number": _height(c)}}}})


RENDERERS: dict[str, Callable[[RenderContext], Answer]] = {
    **{family: coins.render for family, coins in _COINS.items()},
    "cryptocompare_histominute": _cryptocompare_histo,
    "binance_klines": _binance_klines,
    "kraken_ticker": _kraken,
    "coinbase_stats": _coinbase_stats,
    "coinbase_spot": _coinbase_spot,
    "bitfinex_tickers": _bitfinex,
    **{family: tickers.render for family, tickers in _TICKERS.items()},
    "rss": _feed,
    "newsapi_everything": _newsapi,
    "cryptopanic_posts": _cryptopanic,
    "reddit_listing": _reddit,
    "evm_rpc": _evm_rpc,
    "solana_rpc": _solana_rpc,
    "tron_rpc": _tron_rpc,
    "etherscan_price": _etherscan_price,
    "etherscan_proxy_block": _etherscan_block,
    "blockchair_stats": _blockchair,
    "ethplorer_lastblock": _ethplorer,
    "esplora_height": _esplora,
    "mempool_prices": _mempool,
    "whale_alert_status": _whale_alert,
    "fear_greed": _fear_greed,
    "defillama_chains": _defillama_chains,
    "defillama_stablecoins": _defillama_stablecoins,
    "http_probe": _http_probe,
    "graphql_probe": _graphql_probe,
}

_MAINTENANCE = (
    b"<!DOCTYPE html><html><head><title>We'll be right back</title></head><body>"
    b"<h1>Scheduled maintenance</h1><p>Our site is down for maintenance.</p></body></html>"
)

# the provider's own error, sent with HTTP 200
_ERROR_BODIES: dict[str, Any] = {
    "coingecko_markets": {"status": {"error_code": 10002, "error_message": "API Key Missing"}},
    "coingecko_simple": {"status": {"error_code": 10002, "error_message": "API Key Missing"}},
    "coingecko_coin": {"error": "coin not found"},
    "coinmarketcap_quotes": {"status": {"error_code": 1002, "error_message": "API key missing."}},
    "cryptocompare_pricemultifull": {
        "Response": "Error",
        "Message": "fsyms param is empty or null.",
        "HasWarning": False,
        "Type": 2,
        "RateLimit": {},
        "Data": {},
    },
    "cryptocompare_histominute": {
        "Response": "Error",
        "Message": "There is no data for the symbol BTCX .",
        "HasWarning": False,
        "Type": 2,
        "RateLimit": {},
        "Data": {},
    },
    "coinpaprika_tickers": {"error": "invalid parameters"},
    "coinpaprika_ticker": {"error": "id not found"},
    "coincap_assets": {"error": "use of this endpoint requires an api key", "timestamp": 0},
    "coincap_asset": {"error": "bitcoin2 not found", "timestamp": 0},
    "coinlore_tickers": {"data": [], "info": {"coins_num": 0, "time": 0}},
    "messari_metrics": {
        "status": {
            "elapsed": 1,
            "timestamp": "",
            "error_code": 404,
            "error_message": "Asset not found",
        }
    },
    "coinapi_exchangerate": {"error": "Invalid API key"},
    "dia_quotation": {"errorcode": 404, "errormessage": "asset not found"},
    "coinstats_coins": {"coins": []},
    "defillama_prices": {"coins": {}},
    "binance_24hr": {"code": -1121, "msg": "Invalid symbol."},
    "binance_price": {"code": -1121, "msg": "Invalid symbol."},
    "binance_klines": {"code": -1121, "msg": "Invalid symbol."},
    "kraken_ticker": {"error": ["EQuery:Unknown asset pair"]},
    "coinbase_stats": {"message": "NotFound"},
    "coinbase_spot": {"errors": [{"id": "not_found", "message": "Invalid currency"}]},
    "bitfinex_tickers": ["error", 10020, "symbol: invalid"],
    "okx_tickers": {"code": "51001", "msg": "Instrument ID does not exist", "data": []},
    "bybit_tickers": {
        "retCode": 10001,
        "retMsg": "params error",
        "result": {},
        "retExtInfo": {},
        "time": 0,
    },
    "kucoin_alltickers": {"code": "400100", "msg": "Invalid request"},
    "gateio_tickers": {"label": "INVALID_CURRENCY_PAIR", "message": "Invalid currency pair"},
    "htx_tickers": {
        "status": "error",
        "err-code": "invalid-parameter",
        "err-msg": "invalid symbol",
        "data": None,
    },
    "bitstamp_tickers": {"status": "error", "reason": "Invalid currency pair", "code": "API0005"},
    "gemini_pricefeed": {
        "result": "error",
        "reason": "InvalidSymbol",
        "message": "Supplied value is not a valid symbol",
    },
    "bitget_tickers": {
        "code": "40034",
        "msg": "Parameter does not exist",
        "requestTime": 0,
        "data": None,
    },
    "cryptocom_tickers": {
        "id": -1,
        "method": "public/get-tickers",
        "code": 40004,
        "message": "Invalid instrument_name",
    },
    "newsapi_everything": {
        "status": "error",
        "code": "apiKeyInvalid",
        "message": "Your API key is invalid or incorrect.",
    },
    "cryptopanic_posts": {"status": "Incomplete", "info": "Token not found"},
    "reddit_listing": {"message": "Forbidden", "error": 403},
    "evm_rpc": {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {
            "code": -32601,
            "message": "the method eth_blockNumber does not exist/is not available",
        },
    },
    "solana_rpc": {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32601, "message": "Method not found"},
    },
    "tron_rpc": {"Error": "class org.tron.core.exception.BadItemException : block is null"},
    "etherscan_price": {"status": "0", "message": "NOTOK", "result": "Invalid API Key"},
    "etherscan_proxy_block": {"status": "0", "message": "NOTOK", "result": "Invalid API Key"},
    "blockchair_stats": {"data": None, "context": {"code": 400, "error": "Invalid request"}},
    "ethplorer_lastblock": {"error": {"code": 1, "message": "Invalid API key"}},
    "mempool_prices": {},
    "whale_alert_status": {"result": "error", "message": "invalid api_key"},
    "fear_greed": {
        "name": "Fear and Greed Index",
        "data": [],
        "metadata": {"error": "Invalid limit"},
    },
    "defillama_chains": [],
    "defillama_stablecoins": {"peggedAssets": []},
    "http_probe": {"status": "error", "message": "maintenance"},
    "graphql_probe": {"errors": [{"message": "Internal server error"}]},
}

_RATE_LIMIT_BODIES: dict[str, Any] = {
    "coingecko_markets": {
        "status": {
            "error_code": 429,
            "error_message": "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits.",
        }
    },
    "okx_tickers": {"code": "50011", "msg": "Too Many Requests", "data": []},
    "binance_24hr": {
        "code": -1003,
        "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE.",
    },
    "kucoin_alltickers": {"code": "429000", "msg": "Too Many Requests"},
    "gateio_tickers": {"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"},
    "evm_rpc": {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32005, "message": "rate limit exceeded"},
    },
}


#: the API's answer to a key that is missing (``missing``) or wrong: (status, body)
_AUTH_ERRORS: dict[str, tuple[int, Any, Any]] = {
    "coingecko": (
        401,
        {"status": {"error_code": 10002, "error_message": "API Key Missing"}},
        {
            "status": {
                "error_code": 10010,
                "error_message": "If you are using Pro API key, please change your root URL "
                "from api.coingecko.com to pro-api.coingecko.com",
            }
        },
    ),
    "coinmarketcap": (
        401,
        {"status": {"error_code": 1002, "error_message": "API key missing.", "credit_count": 0}},
        {
            "status": {
                "error_code": 1001,
                "error_message": "This API Key is invalid.",
                "credit_count": 0,
            }
        },
    ),
    "cryptopanic": (
        401,
        {"status": "Incomplete", "info": "Token not found"},
        {"status": "Incomplete", "info": "Token not found"},
    ),
    "newsapi": (
        401,
        {"status": "error", "code": "apiKeyMissing", "message": "Your API key is missing."},
        {"status": "error", "code": "apiKeyInvalid", "message": "Your API key is invalid."},
    ),
}

#: the monthly allowance used up: (status, body)
_QUOTA_BODIES: dict[str, Any] = {
    "coingecko": {
        "status": {
            "error_code": 429,
            "error_message": "You've exceeded the Rate Limit. Please visit "
            "https://www.coingecko.com/en/api/pricing to subscribe to our API plans for "
            "higher rate limits.",
        }
    },
    "coinmarketcap": {
        "status": {
            "error_code": 1010,
            "error_message": "You've exceeded your API Key's monthly credit limit.",
            "credit_count": 0,
        }
    },
}


def _vendor(family: str) -> str:
    return family.split("_", 1)[0]


def error_answer(family: str) -> Answer:
    if family in ("rss", "esplora_height"):
        return Answer(200, "text/html; charset=utf-8", _MAINTENANCE)
    # HTTP 200 on purpose (a cache or proxy serving an error as data); the real statuses of
    # auth and quota errors are auth_error_answer's and quota_answer's
    return _json(_ERROR_BODIES.get(family, {"error": "internal error"}))


def auth_error_answer(family: str, *, missing: bool) -> Answer:
    """The API's own answer to a missing or wrong key (CoinGecko, CoinMarketCap: 401)."""
    status, absent, wrong = _AUTH_ERRORS.get(
        _vendor(family), (401, {"error": "missing api key"}, {"error": "Invalid API key"})
    )
    return _json(absent if missing else wrong, status)


def rate_limit_answer(family: str) -> Answer:
    if family == "bybit_tickers":  # the per-IP limit: a 403 and a 10-minute ban
        return Answer(403, "text/plain", b"access too frequent")
    body = _RATE_LIMIT_BODIES.get(family, {"error": "Too Many Requests", "status": 429})
    return _json(body, status=429)


def quota_answer(family: str) -> Answer:
    """The monthly allowance used up (CoinGecko, CoinMarketCap: 429)."""
    body = _QUOTA_BODIES.get(_vendor(family), {"error": "monthly quota exceeded"})
    return _json(body, status=429)


def feed_hosts(providers: list[Provider]) -> dict[str, str]:
    """Each news provider's site host (stories link there)."""
    return {
        p.id: urlsplit(p.base_url).hostname or "news.example"
        for p in providers
        if p.category == "news"
    }


def now() -> float:
    return time.time()
