"""Bybit v5 public spot stream (``wss://stream.bybit.com/v5/public/spot``).

- Subscribe: ``{"op": "subscribe", "args": ["tickers.BTCUSDT"], "req_id": "1"}`` (spot: at
  most 10 args per request), answered ``{"success": true, "ret_msg": "subscribe", "conn_id",
  "req_id", "op": "subscribe"}``; refused: ``"success": false`` and ``ret_msg``.
- Ping: ``{"op": "ping", "req_id"}`` every 20 s (the server drops a silent client), answered
  ``{"success": true, "ret_msg": "pong", "op": "ping"}`` (spot) or ``{"op": "pong"}``.
- Tickers: ``{"topic": "tickers.BTCUSDT", "ts" (ms), "type": "snapshot", "cs" (cross
  sequence), "data": {"symbol", "lastPrice", "price24hPcnt" (fraction), "turnover24h"
  (quote), ...}}``; spot sends snapshots, derivatives send deltas of the changed fields only
  (a delta without ``lastPrice`` carries no price).
- ``cs`` increases with holes: only a step back is noticed. 500 connections per 5 minutes
  per IP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..catalog import Asset
from .protocol import (
    INVALID,
    Frame,
    VenueLimits,
    VenueProtocol,
    decode_json,
    dumps,
    ms_time,
    number,
)

__all__ = ["BybitProtocol"]


class BybitProtocol(VenueProtocol):
    venue = "bybit"
    url = "wss://stream.bybit.com/v5/public/spot"
    rest_provider = "bybit"
    rest_family = "bybit_tickers"
    limits: ClassVar[VenueLimits] = VenueLimits(
        streams_per_connection=200,
        symbols_per_subscribe=10,
        messages_per_s=5.0,
        connects_per_s=1.0,  # 500 per 5 minutes per IP
        stall_s=30.0,
        ping_interval_s=20.0,
        sequence="monotonic",
    )

    def __init__(self, assets: Sequence[Asset]) -> None:
        super().__init__(assets)
        self._req = 0

    def _next(self) -> str:
        self._req += 1
        return str(self._req)

    def subscribe_messages(self, pairs: Sequence[str]) -> list[str]:
        return [
            dumps({"op": "subscribe", "args": [f"tickers.{p}" for p in c], "req_id": self._next()})
            for c in self.chunks(pairs)
        ]

    def ping(self) -> str | None:
        return dumps({"op": "ping", "req_id": self._next()})

    def parse(self, raw: str | bytes, received_at: float) -> Frame:
        msg = decode_json(raw)
        if msg is INVALID or not isinstance(msg, dict):
            return Frame("malformed", detail="not a JSON object")
        op = msg.get("op")
        if op is not None:
            if op == "pong" or msg.get("ret_msg") == "pong":
                return Frame("heartbeat", detail="pong")
            if msg.get("success") is True:
                return Frame("ack" if op == "subscribe" else "info", detail=str(op))
            text = str(msg.get("ret_msg") or "request failed")
            lowered = text.lower()
            return Frame(
                "error", detail=text, rate_limited="too many" in lowered or "frequen" in lowered
            )
        topic = msg.get("topic")
        if isinstance(topic, str) and topic.startswith("tickers."):
            data = msg.get("data")
            if not isinstance(data, dict):
                return Frame("malformed", detail="ticker without data")
            if msg.get("type") == "delta" and "lastPrice" not in data:
                return Frame("info", detail="delta without a price")
            change = number(data.get("price24hPcnt"))
            tick = self.tick(
                data.get("symbol"),
                data.get("lastPrice"),
                received_at,
                exchange_ts=ms_time(msg.get("ts")),
                volume_24h=number(data.get("turnover24h")),
                change_24h=change * 100 if change is not None else None,
                sequence=msg.get("cs"),
            )
            return self.ticks_frame([tick], 1)
        return Frame("malformed", detail="unknown message")
