"""How each simulated venue talks: what it answers to a client's message, and the shape of
its ticks and heartbeats. Pure: no sockets, no clock (times are passed in)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from ...catalog import Asset
from ...streaming import PROTOCOLS

__all__ = ["DIALECTS", "Dialect", "Reply", "TickValues"]


def _j(value: Any) -> str:
    return orjson.dumps(value).decode()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _num(value: float) -> str:
    return f"{value:.8g}" if value < 1 else f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class TickValues:
    price: float
    volume_24h: float  #: base currency
    open_24h: float
    sequence: int
    now: float


@dataclass
class Reply:
    """What the venue does with one client message."""

    messages: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)  #: pairs (the venue's names) added
    close: tuple[int, str] | None = None  #: close the connection with (code, reason)


class Dialect(ABC):
    venue: ClassVar[str]
    streams_per_connection: ClassVar[int] = 1024
    #: client messages per second the venue takes before it closes the connection
    messages_per_s: ClassVar[float | None] = None
    heartbeat_s: ClassVar[float | None] = None  #: the venue's own heartbeats, this often

    def __init__(self, assets: Sequence[Asset]) -> None:
        protocol = PROTOCOLS[self.venue](assets)
        self.pairs: dict[str, str] = dict(protocol.pairs)  #: venue pair -> symbol
        self._key = protocol.key
        self._by_key = {protocol.key(p): p for p in self.pairs}

    def known(self, name: str) -> str | None:
        """The venue pair a client named, if the venue lists it."""
        return self._by_key.get(self._key(name))

    def welcome(self) -> list[str]:
        return []

    @abstractmethod
    def on_message(self, text: str, subscribed: int) -> Reply: ...

    @abstractmethod
    def tick(self, pair: str, v: TickValues) -> str: ...

    def heartbeat(self, pairs: Sequence[str], now: float, sequence: int) -> list[str]:
        return []


def _load(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


class BinanceDialect(Dialect):
    venue = "binance"
    messages_per_s = 5.0

    def __init__(self, assets: Sequence[Asset]) -> None:
        super().__init__(assets)
        self.channels: dict[str, str] = {}

    def on_message(self, text: str, subscribed: int) -> Reply:
        msg = _load(text)
        if not isinstance(msg, dict) or msg.get("method") != "SUBSCRIBE":
            return Reply([_j({"code": 2, "msg": "Invalid request", "id": None})])
        params = msg.get("params")
        if not isinstance(params, list) or subscribed + len(params) > self.streams_per_connection:
            return Reply(
                [_j({"code": 2, "msg": "Invalid request: too many streams", "id": msg.get("id")})]
            )
        added = []
        for stream in params:
            name, _, channel = str(stream).partition("@")
            pair = self.known(name)
            if pair is None or channel not in ("trade", "ticker", "bookTicker"):
                return Reply(
                    [_j({"code": 2, "msg": f"Invalid stream {stream}", "id": msg.get("id")})]
                )
            self.channels[pair] = channel
            added.append(pair)
        return Reply([_j({"result": None, "id": msg.get("id")})], added)

    def tick(self, pair: str, v: TickValues) -> str:
        channel = self.channels.get(pair, "trade")
        ms = int(v.now * 1000)
        stream = f"{pair.lower()}@{channel}"
        if channel == "ticker":
            data: dict[str, Any] = {
                "e": "24hrTicker",
                "E": ms,
                "s": pair,
                "P": f"{(v.price / v.open_24h - 1) * 100:.3f}",
                "c": _num(v.price),
                "q": f"{v.volume_24h * v.price:.2f}",
                "v": f"{v.volume_24h:.4f}",
                "L": v.sequence,
            }
        elif channel == "bookTicker":
            data = {
                "u": v.sequence,
                "s": pair,
                "b": _num(v.price * 0.99995),
                "B": "1.0",
                "a": _num(v.price * 1.00005),
                "A": "1.0",
            }
        else:
            data = {
                "e": "trade",
                "E": ms,
                "s": pair,
                "t": v.sequence,
                "p": _num(v.price),
                "q": "0.01000000",
                "T": ms,
                "m": True,
                "M": True,
            }
        return _j({"stream": stream, "data": data})


class CoinbaseDialect(Dialect):
    venue = "coinbase"
    heartbeat_s = 1.0

    def on_message(self, text: str, subscribed: int) -> Reply:
        msg = _load(text)
        if not isinstance(msg, dict) or msg.get("type") != "subscribe":
            return Reply(
                [_j({"type": "error", "message": "Failed to subscribe", "reason": "bad message"})]
            )
        products = msg.get("product_ids") or []
        added = []
        for product in products:
            pair = self.known(str(product))
            if pair is None:
                return Reply(
                    [
                        _j(
                            {
                                "type": "error",
                                "message": "Failed to subscribe",
                                "reason": f"{product} is not a valid product",
                            }
                        )
                    ]
                )
            added.append(pair)
        channels = [{"name": str(c), "product_ids": added} for c in msg.get("channels") or []]
        return Reply([_j({"type": "subscriptions", "channels": channels})], added)

    def tick(self, pair: str, v: TickValues) -> str:
        return _j(
            {
                "type": "ticker",
                "sequence": v.sequence,
                "product_id": pair,
                "price": _num(v.price),
                "open_24h": _num(v.open_24h),
                "volume_24h": f"{v.volume_24h:.8f}",
                "best_bid": _num(v.price * 0.99995),
                "best_ask": _num(v.price * 1.00005),
                "side": "buy",
                "time": _iso(v.now),
                "trade_id": v.sequence,
                "last_size": "0.01",
            }
        )

    def heartbeat(self, pairs: Sequence[str], now: float, sequence: int) -> list[str]:
        return [
            _j(
                {
                    "type": "heartbeat",
                    "sequence": sequence,
                    "last_trade_id": sequence,
                    "product_id": p,
                    "time": _iso(now),
                }
            )
            for p in pairs
        ]


class KrakenDialect(Dialect):
    venue = "kraken"
    heartbeat_s = 1.0

    def welcome(self) -> list[str]:
        return [
            _j(
                {
                    "channel": "status",
                    "type": "update",
                    "data": [
                        {
                            "api_version": "v2",
                            "connection_id": 1,
                            "system": "online",
                            "version": "2.0.0",
                        }
                    ],
                }
            )
        ]

    def on_message(self, text: str, subscribed: int) -> Reply:
        msg = _load(text)
        if not isinstance(msg, dict):
            return Reply([_j({"error": "Malformed request", "method": None, "success": False})])
        req_id = msg.get("req_id")
        if msg.get("method") == "ping":
            return Reply([_j({"method": "pong", "req_id": req_id, "time_in": "", "time_out": ""})])
        params = msg.get("params")
        if msg.get("method") != "subscribe" or not isinstance(params, dict):
            return Reply(
                [
                    _j(
                        {
                            "error": "Unsupported request",
                            "method": msg.get("method"),
                            "success": False,
                            "req_id": req_id,
                        }
                    )
                ]
            )
        replies, added = [], []
        for name in params.get("symbol") or []:
            pair = self.known(str(name))
            if pair is None:
                replies.append(
                    _j(
                        {
                            "error": f"Currency pair not supported {name}",
                            "method": "subscribe",
                            "success": False,
                            "symbol": name,
                            "req_id": req_id,
                        }
                    )
                )
                continue
            added.append(pair)
            replies.append(
                _j(
                    {
                        "method": "subscribe",
                        "result": {"channel": "ticker", "symbol": pair, "snapshot": True},
                        "success": True,
                        "req_id": req_id,
                    }
                )
            )
        return Reply(replies, added)

    def tick(self, pair: str, v: TickValues) -> str:
        return _j(
            {
                "channel": "ticker",
                "type": "update",
                "data": [
                    {
                        "symbol": pair,
                        "bid": v.price * 0.99995,
                        "bid_qty": 1.0,
                        "ask": v.price * 1.00005,
                        "ask_qty": 1.0,
                        "last": v.price,
                        "volume": v.volume_24h,
                        "vwap": v.price,
                        "low": v.price * 0.98,
                        "high": v.price * 1.02,
                        "change": v.price - v.open_24h,
                        "change_pct": round((v.price / v.open_24h - 1) * 100, 2),
                    }
                ],
            }
        )

    def heartbeat(self, pairs: Sequence[str], now: float, sequence: int) -> list[str]:
        return [_j({"channel": "heartbeat"})]


class OkxDialect(Dialect):
    venue = "okx"
    streams_per_connection = 240

    def on_message(self, text: str, subscribed: int) -> Reply:
        if text == "ping":
            return Reply(["pong"])
        msg = _load(text)
        if not isinstance(msg, dict) or msg.get("op") != "subscribe":
            return Reply(
                [
                    _j(
                        {
                            "event": "error",
                            "code": "60012",
                            "msg": f"Invalid request: {text[:50]}",
                            "connId": "sim",
                        }
                    )
                ]
            )
        replies, added = [], []
        for arg in msg.get("args") or []:
            name = arg.get("instId") if isinstance(arg, dict) else None
            pair = self.known(str(name))
            if pair is None or arg.get("channel") != "tickers":
                replies.append(
                    _j(
                        {
                            "event": "error",
                            "code": "60018",
                            "msg": f"Wrong URL or channel:{arg}",
                            "connId": "sim",
                        }
                    )
                )
                continue
            added.append(pair)
            replies.append(
                _j(
                    {
                        "event": "subscribe",
                        "arg": {"channel": "tickers", "instId": pair},
                        "connId": "sim",
                    }
                )
            )
        return Reply(replies, added)

    def tick(self, pair: str, v: TickValues) -> str:
        return _j(
            {
                "arg": {"channel": "tickers", "instId": pair},
                "data": [
                    {
                        "instType": "SPOT",
                        "instId": pair,
                        "last": _num(v.price),
                        "lastSz": "0.01",
                        "askPx": _num(v.price * 1.00005),
                        "bidPx": _num(v.price * 0.99995),
                        "open24h": _num(v.open_24h),
                        "volCcy24h": f"{v.volume_24h * v.price:.2f}",
                        "vol24h": f"{v.volume_24h:.4f}",
                        "ts": str(int(v.now * 1000)),
                    }
                ],
            }
        )


class BybitDialect(Dialect):
    venue = "bybit"

    def on_message(self, text: str, subscribed: int) -> Reply:
        msg = _load(text)
        if not isinstance(msg, dict):
            return Reply([_j({"success": False, "ret_msg": "error:invalid json", "op": ""})])
        op, req_id = msg.get("op"), msg.get("req_id", "")
        if op == "ping":
            return Reply(
                [
                    _j(
                        {
                            "success": True,
                            "ret_msg": "pong",
                            "conn_id": "sim",
                            "req_id": req_id,
                            "op": "ping",
                        }
                    )
                ]
            )
        args = msg.get("args") or []
        if op != "subscribe":
            return Reply([_j({"success": False, "ret_msg": f"unknown op {op}", "op": op})])
        if len(args) > 10:
            return Reply(
                [
                    _j(
                        {
                            "success": False,
                            "ret_msg": "args size >10",
                            "conn_id": "sim",
                            "req_id": req_id,
                            "op": op,
                        }
                    )
                ]
            )
        added = []
        for topic in args:
            _, _, name = str(topic).partition(".")
            pair = self.known(name)
            if pair is None or not str(topic).startswith("tickers."):
                return Reply(
                    [
                        _j(
                            {
                                "success": False,
                                "ret_msg": f"Invalid symbol :[{topic}]",
                                "conn_id": "sim",
                                "req_id": req_id,
                                "op": op,
                            }
                        )
                    ]
                )
            added.append(pair)
        return Reply(
            [
                _j(
                    {
                        "success": True,
                        "ret_msg": "subscribe",
                        "conn_id": "sim",
                        "req_id": req_id,
                        "op": op,
                    }
                )
            ],
            added,
        )

    def tick(self, pair: str, v: TickValues) -> str:
        return _j(
            {
                "topic": f"tickers.{pair}",
                "ts": int(v.now * 1000),
                "type": "snapshot",
                "cs": v.sequence,
                "data": {
                    "symbol": pair,
                    "lastPrice": _num(v.price),
                    "prevPrice24h": _num(v.open_24h),
                    "price24hPcnt": f"{v.price / v.open_24h - 1:.4f}",
                    "volume24h": f"{v.volume_24h:.4f}",
                    "turnover24h": f"{v.volume_24h * v.price:.2f}",
                },
            }
        )


class BitstampDialect(Dialect):
    venue = "bitstamp"

    def on_message(self, text: str, subscribed: int) -> Reply:
        msg = _load(text)
        if not isinstance(msg, dict):
            return Reply(
                [
                    _j(
                        {
                            "event": "bts:error",
                            "channel": "",
                            "data": {"code": None, "message": "Bad request."},
                        }
                    )
                ]
            )
        event = msg.get("event")
        if event == "bts:heartbeat":
            return Reply(
                [_j({"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}})]
            )
        data = msg.get("data")
        channel = data.get("channel") if isinstance(data, dict) else None
        pair = self.known(str(channel)) if str(channel).startswith("live_trades_") else None
        if event != "bts:subscribe" or pair is None:
            return Reply(
                [
                    _j(
                        {
                            "event": "bts:error",
                            "channel": "",
                            "data": {"code": None, "message": "Bad subscription string."},
                        }
                    )
                ]
            )
        return Reply(
            [_j({"event": "bts:subscription_succeeded", "channel": channel, "data": {}})], [pair]
        )

    def tick(self, pair: str, v: TickValues) -> str:
        channel = "live_trades_" + pair.replace("/", "").lower()
        return _j(
            {
                "data": {
                    "id": v.sequence,
                    "timestamp": str(int(v.now)),
                    "amount": 0.01,
                    "amount_str": "0.01000000",
                    "price": round(v.price, 2),
                    "price_str": _num(v.price),
                    "type": 0,
                    "microtimestamp": str(int(v.now * 1e6)),
                    "buy_order_id": 1,
                    "sell_order_id": 2,
                },
                "channel": channel,
                "event": "trade",
            }
        )


DIALECTS: dict[str, type[Dialect]] = {
    d.venue: d
    for d in (
        BinanceDialect,
        CoinbaseDialect,
        KrakenDialect,
        OkxDialect,
        BybitDialect,
        BitstampDialect,
    )
}
