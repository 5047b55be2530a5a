"""Bitstamp WebSocket v2 (``wss://ws.bitstamp.net``).

- Subscribe, one channel per message: ``{"event": "bts:subscribe", "data": {"channel":
  "live_trades_btcusd"}}``, answered ``{"event": "bts:subscription_succeeded", "channel",
  "data": {}}``.
- Trades: ``{"event": "trade", "channel": "live_trades_btcusd", "data": {"id", "price",
  "price_str", "amount", "timestamp" (s), "microtimestamp" (us), "type"}}``; trade ids
  increase (shared by all markets: holes by design).
- ``{"event": "bts:request_reconnect"}``: the server is going away: reconnect at once.
- Heartbeat: we send ``{"event": "bts:heartbeat"}``, it answers ``{"event": "bts:heartbeat",
  "data": {"status": "success"}}``. Errors: ``{"event": "bts:error", "data": {"message"}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from .protocol import (
    INVALID,
    Frame,
    VenueLimits,
    VenueProtocol,
    decode_json,
    dumps,
    number,
)

__all__ = ["BitstampProtocol"]

_PREFIX = "live_trades_"


class BitstampProtocol(VenueProtocol):
    venue = "bitstamp"
    url = "wss://ws.bitstamp.net"
    rest_provider = "bitstamp"
    rest_family = "bitstamp_tickers"
    limits: ClassVar[VenueLimits] = VenueLimits(
        streams_per_connection=100,
        symbols_per_subscribe=1,
        messages_per_s=10.0,
        connects_per_s=1.0,
        stall_s=60.0,  # trades can be sparse; our heartbeats get answers
        ping_interval_s=20.0,
        sequence="monotonic",
    )

    def key(self, pair: str) -> str:
        # BTC/USD (the REST pair) and live_trades_btcusd (the channel) name one market
        return pair.removeprefix(_PREFIX).replace("/", "").upper()

    def channel(self, pair: str) -> str:
        return _PREFIX + pair.replace("/", "").lower()

    def subscribe_messages(self, pairs: Sequence[str]) -> list[str]:
        return [
            dumps({"event": "bts:subscribe", "data": {"channel": self.channel(p)}}) for p in pairs
        ]

    def expected_acks(self, pairs: Sequence[str]) -> int:
        return len(pairs)

    def ping(self) -> str | None:
        return dumps({"event": "bts:heartbeat"})

    def parse(self, raw: str | bytes, received_at: float) -> Frame:
        msg = decode_json(raw)
        if msg is INVALID or not isinstance(msg, dict):
            return Frame("malformed", detail="not a JSON object")
        event = msg.get("event")
        if event == "trade":
            data = msg.get("data")
            if not isinstance(data, dict):
                return Frame("malformed", detail="trade without data")
            micro, seconds = number(data.get("microtimestamp")), number(data.get("timestamp"))
            ts = micro / 1e6 if micro else seconds
            tick = self.tick(
                msg.get("channel"),
                data.get("price_str", data.get("price")),
                received_at,
                exchange_ts=ts,
                sequence=data.get("id"),
            )
            return self.ticks_frame([tick], 1)
        if event == "bts:subscription_succeeded":
            return Frame("ack", detail=str(msg.get("channel")))
        if event == "bts:heartbeat":
            return Frame("heartbeat")
        if event == "bts:request_reconnect":
            return Frame("reconnect", detail="bts:request_reconnect")
        if event == "bts:error":
            data = msg.get("data")
            text = str(data.get("message") if isinstance(data, dict) else data)
            return Frame("error", detail=text, rate_limited="too many" in text.lower())
        if isinstance(event, str):
            return Frame("info", detail=event)
        return Frame("malformed", detail="no event")
