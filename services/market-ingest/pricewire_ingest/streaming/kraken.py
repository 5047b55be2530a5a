"""Kraken spot WebSocket v2 (``wss://ws.kraken.com/v2``).

- Subscribe: ``{"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]},
  "req_id": 1}``; one answer per symbol: ``{"method": "subscribe", "result": {"channel":
  "ticker", "symbol": "BTC/USD", ...}, "success": true, "time_in", "time_out", "req_id"}``,
  ``"success": false`` with ``error`` when refused.
- Ticker: ``{"channel": "ticker", "type": "snapshot" | "update", "data": [{"symbol", "bid",
  "ask", "last", "volume" (base), "vwap", "change_pct", ...}]}`` (JSON numbers), on trades.
- ``{"channel": "heartbeat"}`` about once a second when nothing else is sent; ``status``
  messages say whether the system is online.
- Ping: ``{"method": "ping", "req_id": n}``, answered ``{"method": "pong", ...}``.
- v2 names markets with the common symbols (``BTC/USD``, ``DOGE/USD``), not the REST API's
  ``XBTUSD``/``XDGUSD``; the catalog symbol with ``/USD`` is the v2 name of the REST pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..catalog import Asset
from .protocol import (
    INVALID,
    Frame,
    Tick,
    VenueLimits,
    VenueProtocol,
    decode_json,
    dumps,
    iso_time,
    number,
    positive,
)

__all__ = ["KrakenProtocol"]


class KrakenProtocol(VenueProtocol):
    venue = "kraken"
    url = "wss://ws.kraken.com/v2"
    rest_provider = "kraken"
    rest_family = "kraken_ticker"
    limits: ClassVar[VenueLimits] = VenueLimits(
        streams_per_connection=200,
        symbols_per_subscribe=50,
        messages_per_s=10.0,
        connects_per_s=1.0,  # about 150 per 10 minutes per IP
        stall_s=10.0,  # heartbeats every second
        ping_interval_s=30.0,
    )

    def __init__(self, assets: Sequence[Asset]) -> None:
        super().__init__(assets)
        self._req = 0

    def pair(self, asset: Asset) -> str | None:
        # the REST pair (XBTUSD, XDGUSD) under v2's normalised asset names
        if self.rest_family and super().pair(asset) is None:
            return None
        return f"{asset.symbol}/USD"

    def subscribe_messages(self, pairs: Sequence[str]) -> list[str]:
        messages = []
        for chunk in self.chunks(pairs):
            self._req += 1
            messages.append(
                dumps(
                    {
                        "method": "subscribe",
                        "params": {"channel": "ticker", "symbol": chunk},
                        "req_id": self._req,
                    }
                )
            )
        return messages

    def expected_acks(self, pairs: Sequence[str]) -> int:
        return len(pairs)  # one answer per symbol

    def ping(self) -> str | None:
        self._req += 1
        return dumps({"method": "ping", "req_id": self._req})

    def parse(self, raw: str | bytes, received_at: float) -> Frame:
        msg = decode_json(raw)
        if msg is INVALID or not isinstance(msg, dict):
            return Frame("malformed", detail="not a JSON object")
        method = msg.get("method")
        if method is not None:
            if method == "pong":
                return Frame("heartbeat", detail="pong")
            if msg.get("success") is True:
                return Frame("ack" if method == "subscribe" else "info", detail=str(method))
            text = str(msg.get("error") or "request failed")
            return Frame("error", detail=text, rate_limited="rate limit" in text.lower())
        channel = msg.get("channel")
        if channel == "heartbeat":
            return Frame("heartbeat")
        if channel == "ticker":
            rows = msg.get("data")
            if not isinstance(rows, list):
                return Frame("malformed", detail="ticker without data")
            return self.ticks_frame([self._row(r, received_at) for r in rows], len(rows))
        if channel == "status":
            data = msg.get("data")
            first: Any = data[0] if isinstance(data, list) and data else {}
            system = first.get("system") if isinstance(first, dict) else None
            return Frame("info", detail=f"status {system}")
        if isinstance(channel, str):
            return Frame("info", detail=channel)
        return Frame("malformed", detail="no channel or method")

    def _row(self, row: Any, received_at: float) -> Tick | None:
        if not isinstance(row, dict):
            return None
        volume = number(row.get("volume"))
        average = positive(row.get("vwap")) or positive(row.get("last"))
        return self.tick(
            row.get("symbol"),
            row.get("last"),
            received_at,
            exchange_ts=iso_time(row.get("timestamp")),
            volume_24h=volume * average if volume is not None and average else None,
            change_24h=number(row.get("change_pct")),
        )
