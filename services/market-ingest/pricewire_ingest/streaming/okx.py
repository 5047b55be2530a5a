"""OKX v5 public WebSocket (``wss://ws.okx.com:8443/ws/v5/public``).

- Subscribe: ``{"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]}``;
  one answer per arg: ``{"event": "subscribe", "arg": {...}, "connId"}``; refused:
  ``{"event": "error", "code": "60012", "msg", "connId"}`` (60014/63999 ... ; 60008:
  too many requests).
- Push: ``{"arg": {"channel": "tickers", "instId"}, "data": [{"instId", "last", "open24h",
  "volCcy24h" (quote currency), "ts" (ms)}]}``; tickers carry no sequence number.
- Keep-alive: send the text ``ping`` when nothing arrived for a while (the server closes a
  connection silent for 30 s); the answer is the text ``pong``.
- ``{"event": "notice", "code": "64008"}``: the connection will close for an upgrade:
  reconnect.
- Limits: 3 connection requests per second per IP; 480 subscribe operations per hour per
  connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from .protocol import (
    INVALID,
    Frame,
    Tick,
    VenueLimits,
    VenueProtocol,
    decode_json,
    dumps,
    ms_time,
    number,
    positive,
)

__all__ = ["OkxProtocol"]

_RATE_CODES = frozenset({"60008", "60014", "63999", "50011"})


class OkxProtocol(VenueProtocol):
    venue = "okx"
    url = "wss://ws.okx.com:8443/ws/v5/public"
    rest_provider = "okx"
    rest_family = "okx_tickers"
    limits: ClassVar[VenueLimits] = VenueLimits(
        streams_per_connection=240,
        symbols_per_subscribe=20,
        messages_per_s=2.0,
        connects_per_s=2.0,  # 3 per second per IP
        stall_s=30.0,
        ping_interval_s=20.0,  # under the server's 30 s
    )

    def subscribe_messages(self, pairs: Sequence[str]) -> list[str]:
        return [
            dumps({"op": "subscribe", "args": [{"channel": "tickers", "instId": p} for p in c]})
            for c in self.chunks(pairs)
        ]

    def expected_acks(self, pairs: Sequence[str]) -> int:
        return len(pairs)  # one answer per arg

    def ping(self) -> str | None:
        return "ping"

    def parse(self, raw: str | bytes, received_at: float) -> Frame:
        if raw in ("pong", b"pong"):
            return Frame("heartbeat", detail="pong")
        msg = decode_json(raw)
        if msg is INVALID or not isinstance(msg, dict):
            return Frame("malformed", detail="not a JSON object")
        event = msg.get("event")
        if event == "subscribe":
            return Frame("ack")
        if event == "error":
            code = str(msg.get("code"))
            return Frame(
                "error", detail=f"{code}: {msg.get('msg')}", rate_limited=code in _RATE_CODES
            )
        if event == "notice":
            return Frame("reconnect", detail=f"{msg.get('code')}: {msg.get('msg')}")
        if event is not None:
            return Frame("info", detail=str(event))
        arg, rows = msg.get("arg"), msg.get("data")
        if isinstance(arg, dict) and arg.get("channel") == "tickers" and isinstance(rows, list):
            return self.ticks_frame([self._row(r, received_at) for r in rows], len(rows))
        return Frame("malformed", detail="unknown message")

    def _row(self, row: Any, received_at: float) -> Tick | None:
        if not isinstance(row, dict):
            return None
        last, open_ = positive(row.get("last")), positive(row.get("open24h"))
        return self.tick(
            row.get("instId"),
            row.get("last"),
            received_at,
            exchange_ts=ms_time(row.get("ts")),
            volume_24h=number(row.get("volCcy24h")),
            change_24h=(last / open_ - 1) * 100 if last and open_ else None,
        )
