"""The venue protocol cores, table-tested on the venues' real frame shapes: subscribe
messages, acks, heartbeats, pings, ticks, errors, malformed frames and sequence numbers."""

from __future__ import annotations

import doctest
import importlib
import math
from typing import Any

import orjson
import pytest

from pricewire_ingest.adapters import adapter_for
from pricewire_ingest.catalog import Catalog
from pricewire_ingest.streaming import PROTOCOLS, VenueProtocol
from pricewire_ingest.streaming.binance import BinanceProtocol
from pricewire_ingest.streaming.sequence import SequenceTracker

NOW = 1705314600.0


def proto(catalog: Catalog, venue: str, **options: Any) -> VenueProtocol:
    return PROTOCOLS[venue](catalog.assets, **options)


def j(value: Any) -> str:
    return orjson.dumps(value).decode()


# -- symbols and subscribe messages --------------------------------------------------------
@pytest.mark.parametrize(
    ("venue", "pair"),
    [
        ("binance", "BTCUSDT"),
        ("coinbase", "BTC-USD"),
        ("kraken", "BTC/USD"),
        ("okx", "BTC-USDT"),
        ("bybit", "BTCUSDT"),
        ("bitstamp", "BTC/USD"),
    ],
)
def test_pairs_follow_the_rest_symbol_rules(catalog: Catalog, venue: str, pair: str) -> None:
    p = proto(catalog, venue)
    assert p.pairs[pair] == "BTC"
    # the same coins as the REST adapter polls
    assert len(p.pairs) == len(adapter_for(p.rest_family).pair_index(catalog.assets))


def test_kraken_v2_uses_common_names(catalog: Catalog) -> None:
    p = proto(catalog, "kraken")
    assert "DOGE/USD" in p.pairs and "XDG/USD" not in p.pairs


def test_subscribe_messages(catalog: Catalog) -> None:
    pairs = ["BTCUSDT", "ETHUSDT"]
    binance = orjson.loads(proto(catalog, "binance").subscribe_messages(pairs)[0])
    assert binance == {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@trade"], "id": 1}
    ticker = orjson.loads(proto(catalog, "binance", channel="ticker").subscribe_messages(pairs)[0])
    assert ticker["params"] == ["btcusdt@ticker", "ethusdt@ticker"]
    coinbase = orjson.loads(proto(catalog, "coinbase").subscribe_messages(["BTC-USD"])[0])
    assert coinbase == {
        "type": "subscribe",
        "product_ids": ["BTC-USD"],
        "channels": ["ticker", "heartbeat"],
    }
    kraken = orjson.loads(proto(catalog, "kraken").subscribe_messages(["BTC/USD"])[0])
    assert kraken["method"] == "subscribe"
    assert kraken["params"] == {"channel": "ticker", "symbol": ["BTC/USD"]}
    okx = orjson.loads(proto(catalog, "okx").subscribe_messages(["BTC-USDT"])[0])
    assert okx == {"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]}
    bitstamp = proto(catalog, "bitstamp").subscribe_messages(["BTC/USD", "ETH/USD"])
    assert [orjson.loads(m) for m in bitstamp] == [
        {"event": "bts:subscribe", "data": {"channel": "live_trades_btcusd"}},
        {"event": "bts:subscribe", "data": {"channel": "live_trades_ethusd"}},
    ]


def test_bybit_spot_takes_ten_args_per_subscribe(catalog: Catalog) -> None:
    p = proto(catalog, "bybit")
    pairs = sorted(p.pairs)
    messages = [orjson.loads(m) for m in p.subscribe_messages(pairs)]
    assert [len(m["args"]) for m in messages] == [10, len(pairs) - 10]
    assert messages[0]["op"] == "subscribe" and messages[0]["args"][0].startswith("tickers.")
    assert p.expected_acks(pairs) == 2


def test_pings(catalog: Catalog) -> None:
    assert proto(catalog, "okx").ping() == "ping"
    assert orjson.loads(proto(catalog, "bybit").ping() or "")["op"] == "ping"
    assert orjson.loads(proto(catalog, "kraken").ping() or "")["method"] == "ping"
    assert orjson.loads(proto(catalog, "bitstamp").ping() or "") == {"event": "bts:heartbeat"}
    assert proto(catalog, "binance").ping() is None  # the server pings (control frames)
    assert proto(catalog, "coinbase").ping() is None  # the heartbeat channel


# -- frames --------------------------------------------------------------------------------
FRAMES: list[tuple[str, str | bytes, str]] = [
    # binance
    ("binance", j({"result": None, "id": 1}), "ack"),
    ("binance", j({"code": 2, "msg": "Invalid request: unknown variant", "id": 1}), "error"),
    ("binance", j({"stream": "btcusdt@trade", "data": {"e": "serverShutdown"}}), "reconnect"),
    # coinbase
    (
        "coinbase",
        j({"type": "subscriptions", "channels": [{"name": "ticker", "product_ids": ["BTC-USD"]}]}),
        "ack",
    ),
    (
        "coinbase",
        j(
            {
                "type": "heartbeat",
                "sequence": 90,
                "last_trade_id": 20,
                "product_id": "BTC-USD",
                "time": "2014-11-07T08:19:28.464459Z",
            }
        ),
        "heartbeat",
    ),
    ("coinbase", j({"type": "error", "message": "Failed to subscribe", "reason": "x"}), "error"),
    # kraken
    (
        "kraken",
        j(
            {
                "method": "subscribe",
                "result": {"channel": "ticker", "symbol": "BTC/USD", "snapshot": True},
                "success": True,
                "time_in": "2023-09-25T09:04:31.742599Z",
                "time_out": "2023-09-25T09:04:31.742648Z",
            }
        ),
        "ack",
    ),
    (
        "kraken",
        j({"method": "subscribe", "success": False, "error": "Currency pair not supported"}),
        "error",
    ),
    ("kraken", j({"channel": "heartbeat"}), "heartbeat"),
    ("kraken", j({"method": "pong", "req_id": 3, "time_in": "x", "time_out": "y"}), "heartbeat"),
    (
        "kraken",
        j(
            {
                "channel": "status",
                "type": "update",
                "data": [{"api_version": "v2", "system": "online", "version": "2.0.0"}],
            }
        ),
        "info",
    ),
    # okx
    (
        "okx",
        j(
            {
                "event": "subscribe",
                "arg": {"channel": "tickers", "instId": "BTC-USDT"},
                "connId": "a",
            }
        ),
        "ack",
    ),
    (
        "okx",
        j({"event": "error", "code": "60012", "msg": "Invalid request", "connId": "a"}),
        "error",
    ),
    ("okx", "pong", "heartbeat"),
    ("okx", j({"event": "notice", "code": "64008", "msg": "service upgrade"}), "reconnect"),
    # bybit
    (
        "bybit",
        j(
            {
                "success": True,
                "ret_msg": "subscribe",
                "conn_id": "c",
                "req_id": "1",
                "op": "subscribe",
            }
        ),
        "ack",
    ),
    (
        "bybit",
        j({"success": True, "ret_msg": "pong", "conn_id": "c", "req_id": "2", "op": "ping"}),
        "heartbeat",
    ),
    (
        "bybit",
        j({"success": False, "ret_msg": "Invalid symbol :[tickers.XYZ]", "op": "subscribe"}),
        "error",
    ),
    # bitstamp
    (
        "bitstamp",
        j({"event": "bts:subscription_succeeded", "channel": "live_trades_btcusd", "data": {}}),
        "ack",
    ),
    (
        "bitstamp",
        j({"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}}),
        "heartbeat",
    ),
    ("bitstamp", j({"event": "bts:request_reconnect", "channel": "", "data": ""}), "reconnect"),
    ("bitstamp", j({"event": "bts:error", "channel": "", "data": {"message": "Bad"}}), "error"),
]

MALFORMED: list[str | bytes] = ["", "{", "[1, 2]", "null", b"\xff\xfe", "ping pong", j({"x": 1})]


@pytest.mark.parametrize(("venue", "raw", "kind"), FRAMES)
def test_frames_are_classified(catalog: Catalog, venue: str, raw: str | bytes, kind: str) -> None:
    frame = proto(catalog, venue).parse(raw, NOW)
    assert frame.kind == kind
    assert frame.ticks == ()


@pytest.mark.parametrize("venue", sorted(PROTOCOLS))
@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_frames_give_no_price(catalog: Catalog, venue: str, raw: str | bytes) -> None:
    frame = proto(catalog, venue).parse(raw, NOW)
    assert frame.kind == "malformed"
    assert frame.ticks == ()


def test_rate_limit_errors_are_marked(catalog: Catalog) -> None:
    binance = proto(catalog, "binance").parse(j({"code": -1003, "msg": "Too many", "id": 1}), NOW)
    okx = proto(catalog, "okx").parse(j({"event": "error", "code": "60014", "msg": "x"}), NOW)
    assert binance.rate_limited and okx.rate_limited
    other = proto(catalog, "okx").parse(j({"event": "error", "code": "60012", "msg": "x"}), NOW)
    assert not other.rate_limited


# -- ticks ---------------------------------------------------------------------------------
BINANCE_TRADE = {
    "stream": "btcusdt@trade",
    "data": {
        "e": "trade",
        "E": 1705314599990,
        "s": "BTCUSDT",
        "t": 3370031047,
        "p": "42873.51000000",
        "q": "0.00120000",
        "T": 1705314599989,
        "m": True,
        "M": True,
    },
}
BINANCE_TICKER = {
    "stream": "btcusdt@ticker",
    "data": {
        "e": "24hrTicker",
        "E": 1705314599000,
        "s": "BTCUSDT",
        "p": "-120.00",
        "P": "-0.279",
        "c": "42873.51",
        "q": "1234567890.12",
        "v": "28791.1",
        "O": 1705228199000,
        "C": 1705314599000,
        "F": 3369000000,
        "L": 3370031047,
        "n": 1031048,
    },
}
BINANCE_BOOK = {
    "stream": "btcusdt@bookTicker",
    "data": {"u": 400900217, "s": "BTCUSDT", "b": "42873.50", "B": "1", "a": "42873.52", "A": "2"},
}
COINBASE_TICKER = {
    "type": "ticker",
    "sequence": 37475248783,
    "product_id": "BTC-USD",
    "price": "42850.12",
    "open_24h": "42000.00",
    "volume_24h": "12000.5",
    "low_24h": "41800.00",
    "high_24h": "43100.00",
    "volume_30d": "400000.1",
    "best_bid": "42850.11",
    "best_ask": "42850.12",
    "side": "buy",
    "time": "2024-01-15T10:29:59.900000Z",
    "trade_id": 579003151,
    "last_size": "0.01",
}
KRAKEN_TICKER: dict[str, Any] = {
    "channel": "ticker",
    "type": "update",
    "data": [
        {
            "symbol": "BTC/USD",
            "bid": 42860.1,
            "bid_qty": 0.5,
            "ask": 42860.2,
            "ask_qty": 1.2,
            "last": 42860.2,
            "volume": 2500.5,
            "vwap": 42700.0,
            "low": 41900.0,
            "high": 43050.0,
            "change": 500.2,
            "change_pct": 1.18,
        }
    ],
}
OKX_TICKER = {
    "arg": {"channel": "tickers", "instId": "BTC-USDT"},
    "data": [
        {
            "instType": "SPOT",
            "instId": "BTC-USDT",
            "last": "42880.1",
            "lastSz": "0.1",
            "askPx": "42880.2",
            "bidPx": "42880.1",
            "open24h": "42500",
            "high24h": "43100",
            "low24h": "41900",
            "volCcy24h": "987654321.5",
            "vol24h": "23000",
            "sodUtc0": "42600",
            "sodUtc8": "42550",
            "ts": "1705314599950",
        }
    ],
}
BYBIT_TICKER = {
    "topic": "tickers.BTCUSDT",
    "ts": 1705314599960,
    "type": "snapshot",
    "cs": 2588407389,
    "data": {
        "symbol": "BTCUSDT",
        "lastPrice": "42877.77",
        "highPrice24h": "43100",
        "lowPrice24h": "41900",
        "prevPrice24h": "42500",
        "volume24h": "6780.866843",
        "turnover24h": "291946527.2",
        "price24hPcnt": "0.0089",
        "usdIndexPrice": "42880.24",
    },
}
BITSTAMP_TRADE = {
    "data": {
        "id": 316958123,
        "timestamp": "1705314599",
        "amount": 0.0105,
        "amount_str": "0.01050000",
        "price": 42855,
        "price_str": "42855",
        "type": 0,
        "microtimestamp": "1705314599970000",
        "buy_order_id": 1,
        "sell_order_id": 2,
    },
    "channel": "live_trades_btcusd",
    "event": "trade",
}

TICKS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "binance",
        {},
        BINANCE_TRADE,
        {"price": 42873.51, "sequence": 3370031047, "exchange_ts": 1705314599.989},
    ),
    (
        "binance",
        {"channel": "ticker"},
        BINANCE_TICKER,
        {"price": 42873.51, "volume_24h": 1234567890.12, "change_24h": -0.279},
    ),
    (
        "binance",
        {"channel": "bookTicker"},
        BINANCE_BOOK,
        {"price": 42873.51, "sequence": 400900217},
    ),
    (
        "coinbase",
        {},
        COINBASE_TICKER,
        {"price": 42850.12, "sequence": 37475248783, "exchange_ts": 1705314599.9},
    ),
    ("kraken", {}, KRAKEN_TICKER, {"price": 42860.2, "change_24h": 1.18}),
    (
        "okx",
        {},
        OKX_TICKER,
        {"price": 42880.1, "volume_24h": 987654321.5, "exchange_ts": 1705314599.95},
    ),
    (
        "bybit",
        {},
        BYBIT_TICKER,
        {"price": 42877.77, "sequence": 2588407389, "volume_24h": 291946527.2},
    ),
    (
        "bitstamp",
        {},
        BITSTAMP_TRADE,
        {"price": 42855.0, "sequence": 316958123, "exchange_ts": 1705314599.97},
    ),
]


@pytest.mark.parametrize(("venue", "options", "message", "expected"), TICKS)
def test_ticks_are_normalised(
    catalog: Catalog,
    venue: str,
    options: dict[str, Any],
    message: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    frame = proto(catalog, venue, **options).parse(j(message), NOW)
    assert frame.kind == "tick" and frame.dropped == 0
    (tick,) = frame.ticks
    assert tick.venue == venue and tick.symbol == "BTC" and tick.received_at == NOW
    for name, value in expected.items():
        assert getattr(tick, name) == pytest.approx(value), name
    assert tick.observed_at <= NOW + 1


def test_coinbase_volume_is_converted_to_usd(catalog: Catalog) -> None:
    (tick,) = proto(catalog, "coinbase").parse(j(COINBASE_TICKER), NOW).ticks
    assert tick.volume_24h == pytest.approx(12000.5 * 42850.12)
    assert tick.change_24h == pytest.approx((42850.12 / 42000 - 1) * 100)


def _with(message: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy = orjson.loads(orjson.dumps(message))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy  # type: ignore[no-any-return]


PRICE_PATHS: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
    ("binance", BINANCE_TRADE, ("data", "p")),
    ("coinbase", COINBASE_TICKER, ("price",)),
    ("kraken", KRAKEN_TICKER, ("data", 0, "last")),
    ("okx", OKX_TICKER, ("data", 0, "last")),
    ("bybit", BYBIT_TICKER, ("data", "lastPrice")),
    ("bitstamp", BITSTAMP_TRADE, ("data", "price_str")),
]


@pytest.mark.parametrize(("venue", "message", "path"), PRICE_PATHS)
@pytest.mark.parametrize("bad", ["0", "-1", "NaN", "inf", "", None, "abc", True, [1]])
def test_a_bad_price_is_dropped_and_counted(
    catalog: Catalog, venue: str, message: dict[str, Any], path: tuple[Any, ...], bad: Any
) -> None:
    raw = j(_with(message, path, bad)) if bad not in ("NaN", "inf") else None
    if raw is None:  # JSON has no NaN: venues would send it as a string
        raw = j(_with(message, path, bad))
    frame = proto(catalog, venue).parse(raw, NOW)
    assert frame.ticks == ()
    assert frame.kind == "malformed" and frame.dropped == 1


def test_unknown_pairs_are_not_ticks(catalog: Catalog) -> None:
    frame = proto(catalog, "okx").parse(
        j(_with(OKX_TICKER, ("data", 0, "instId"), "ZZZ-USDT")), NOW
    )
    assert frame.ticks == () and frame.dropped == 1


def test_kraken_snapshot_with_several_rows_keeps_the_good_ones(catalog: Catalog) -> None:
    rows = [KRAKEN_TICKER["data"][0], {**KRAKEN_TICKER["data"][0], "symbol": "ETH/USD", "last": 0}]
    frame = proto(catalog, "kraken").parse(
        j({**KRAKEN_TICKER, "type": "snapshot", "data": rows}), NOW
    )
    assert [t.symbol for t in frame.ticks] == ["BTC"] and frame.dropped == 1


def test_bybit_delta_without_a_price_is_not_a_tick(catalog: Catalog) -> None:
    delta = {**BYBIT_TICKER, "type": "delta", "data": {"symbol": "BTCUSDT", "volume24h": "1"}}
    frame = proto(catalog, "bybit").parse(j(delta), NOW)
    assert frame.kind == "info" and frame.ticks == ()


def test_future_exchange_time_is_not_trusted(catalog: Catalog) -> None:
    future = _with(BINANCE_TRADE, ("data", "T"), (NOW + 3600) * 1000)
    (tick,) = proto(catalog, "binance").parse(j(future), NOW).ticks
    assert tick.observed_at == NOW


def test_prices_are_finite_and_positive_everywhere(catalog: Catalog) -> None:
    for venue, _, message, _ in TICKS:
        for tick in proto(catalog, venue).parse(j(message), NOW).ticks:
            assert math.isfinite(tick.price) and tick.price > 0


# -- sequences -----------------------------------------------------------------------------
def test_binance_trade_ids_gap_is_detected(catalog: Catalog) -> None:
    p = BinanceProtocol(catalog.assets)
    tracker = SequenceTracker(p.sequence_mode)
    checks = []
    for trade_id in (100, 101, 105, 106, 104):
        (tick,) = p.parse(j(_with(BINANCE_TRADE, ("data", "t"), trade_id)), NOW).ticks
        checks.append(tracker.check(tick.pair, tick.sequence))
    assert checks == ["first", "ok", "gap", "ok", "stale"]


def test_coinbase_sequence_holes_are_normal_but_a_step_back_is_stale(catalog: Catalog) -> None:
    p = proto(catalog, "coinbase")
    tracker = SequenceTracker(p.sequence_mode)
    checks = []
    for seq in (10, 14, 20, 19):
        (tick,) = p.parse(j({**COINBASE_TICKER, "sequence": seq}), NOW).ticks
        checks.append(tracker.check(tick.pair, tick.sequence))
    assert checks == ["first", "ok", "ok", "stale"]


def test_sequences_are_per_pair_and_reset_with_the_connection() -> None:
    tracker = SequenceTracker("contiguous")
    assert [tracker.check("A", 1), tracker.check("B", 7), tracker.check("A", 2)] == [
        "first",
        "first",
        "ok",
    ]
    tracker.reset()
    assert tracker.check("A", 50) == "first"


@pytest.mark.parametrize(
    "name",
    [
        "pricewire_ingest.streaming",
        "pricewire_ingest.streaming.protocol",
        "pricewire_ingest.streaming.sequence",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted and result.failed == 0
