"""Coinbase Exchange market data feed (``wss://ws-feed.exchange.coinbase.com``).

- Subscribe: ``{"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["ticker",
  "heartbeat"]}``, answered by ``{"type": "subscriptions", "channels": [...]}``.
- ``ticker``: ``{"type": "ticker", "sequence", "product_id", "price", "open_24h",
  "volume_24h" (base currency), "time" (RFC 3339), "trade_id", ...}`` on every match (batched
  when matches cascade).
- ``heartbeat``: one per product per second, ``{"type": "heartbeat", "sequence",
  "last_trade_id", "product_id", "time"}``: the feed is alive even when nothing trades.
- ``sequence`` is per product and shared by all channels, so the ticker channel sees holes by
  design: only a step back (an older message after a newer one) is noticed.
- Errors: ``{"type": "error", "message", "reason"}``; the server closes idle or slow clients.
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
    iso_time,
    number,
    positive,
)

__all__ = ["CoinbaseProtocol"]


class CoinbaseProtocol(VenueProtocol):
    venue = "coinbase"
    url = "wss://ws-feed.exchange.coinbase.com"
    rest_provider = "coinbase_exchange"
    rest_family = "coinbase_stats"
    limits: ClassVar[VenueLimits] = VenueLimits(
        streams_per_connection=100,
        symbols_per_subscribe=100,
        messages_per_s=50.0,  # 100 per second per IP
        connects_per_s=4.0,  # 8 per second per IP
        stall_s=10.0,  # heartbeats every second
        sequence="monotonic",
    )

    def subscribe_messages(self, pairs: Sequence[str]) -> list[str]:
        return [
            dumps({"type": "subscribe", "product_ids": chunk, "channels": ["ticker", "heartbeat"]})
            for chunk in self.chunks(pairs)
        ]

    def parse(self, raw: str | bytes, received_at: float) -> Frame:
        msg = decode_json(raw)
        if msg is INVALID or not isinstance(msg, dict):
            return Frame("malformed", detail="not a JSON object")
        kind = msg.get("type")
        if kind == "ticker":
            price = msg.get("price")
            volume = number(msg.get("volume_24h"))
            last, open_ = positive(price), positive(msg.get("open_24h"))
            tick = self.tick(
                msg.get("product_id"),
                price,
                received_at,
                exchange_ts=iso_time(msg.get("time")),
                volume_24h=volume * last if volume is not None and last else None,
                change_24h=(last / open_ - 1) * 100 if last and open_ else None,
                sequence=msg.get("sequence"),
            )
            return self.ticks_frame([tick], 1)
        if kind == "heartbeat":
            return Frame("heartbeat")
        if kind == "subscriptions":
            return Frame("ack")
        if kind == "error":
            text = f"{msg.get('message')}: {msg.get('reason')}"
            lowered = text.lower()
            return Frame(
                "error", detail=text, rate_limited="rate" in lowered or "too many" in lowered
            )
        if isinstance(kind, str):
            return Frame("info", detail=kind)
        return Frame("malformed", detail="no type")
