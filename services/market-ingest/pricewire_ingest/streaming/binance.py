"""Binance spot market streams (``wss://stream.binance.com:9443/stream``).

- Combined streams: ``{"stream": "btcusdt@trade", "data": {...}}``; stream names lower case.
- Subscribe: ``{"method": "SUBSCRIBE", "params": ["btcusdt@trade", ...], "id": 1}``, answered
  ``{"result": null, "id": 1}``; an error is ``{"code": 2, "msg": "...", "id": 1}``.
- Channels: ``trade`` (every trade; ``t`` the trade id, contiguous per symbol, ``p`` price,
  ``T`` trade time ms), ``ticker`` (``24hrTicker`` each second: ``c`` last, ``q`` quote volume,
  ``P`` change %, ``E`` event time, ``L`` last trade id), ``bookTicker`` (``b``/``a`` best
  bid/ask, ``u`` update id; the price is the mid).
- The server sends a ping frame every 20 s and wants the pong within a minute (the WebSocket
  library answers control frames); a connection lives at most 24 h; at most 5 messages per
  second from us, 1024 streams per connection, 300 connections per 5 minutes per IP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from ..catalog import Asset
from .protocol import (
    INVALID,
    Frame,
    SequenceMode,
    VenueLimits,
    VenueProtocol,
    decode_json,
    dumps,
    ms_time,
    number,
    positive,
)

__all__ = ["BinanceProtocol"]

BinanceChannel = Literal["trade", "ticker", "bookTicker"]


class BinanceProtocol(VenueProtocol):
    venue = "binance"
    url = "wss://stream.binance.com:9443/stream"
    rest_provider = "binance_public"
    rest_family = "binance_24hr"
    limits: ClassVar[VenueLimits] = VenueLimits(
        streams_per_connection=1024,
        symbols_per_subscribe=200,
        messages_per_s=4.0,  # the documented 5 per second, with headroom
        connects_per_s=1.0,  # 300 per 5 minutes per IP
        stall_s=30.0,
        max_connection_s=24 * 3600.0,
        sequence="contiguous",  # trade ids, per symbol
    )

    def __init__(self, assets: Sequence[Asset], channel: BinanceChannel = "trade") -> None:
        self.channel = channel
        super().__init__(assets)
        self._next_id = 0

    @property
    def sequence_mode(self) -> SequenceMode:
        # trade ids are contiguous per symbol; a ticker's last trade id and a book ticker's
        # update id only increase
        return "contiguous" if self.channel == "trade" else "monotonic"

    def stream(self, pair: str) -> str:
        return f"{pair.lower()}@{self.channel}"

    def subscribe_messages(self, pairs: Sequence[str]) -> list[str]:
        messages = []
        for chunk in self.chunks(pairs):
            self._next_id += 1
            messages.append(
                dumps(
                    {
                        "method": "SUBSCRIBE",
                        "params": [self.stream(p) for p in chunk],
                        "id": self._next_id,
                    }
                )
            )
        return messages

    def parse(self, raw: str | bytes, received_at: float) -> Frame:
        msg = decode_json(raw)
        if msg is INVALID or not isinstance(msg, dict):
            return Frame("malformed", detail="not a JSON object")
        if "result" in msg and "id" in msg:
            return Frame("ack", detail=f"id {msg['id']}")
        if "code" in msg and "msg" in msg:
            code = msg.get("code")
            # 1008 closes and -1003 answers: too many requests
            return Frame(
                "error", detail=f"{code}: {msg['msg']}", rate_limited=code in (-1003, 1008)
            )
        data = msg.get("data", msg if "e" in msg else None)
        if not isinstance(data, dict):
            return Frame("malformed", detail="no data")
        event = data.get("e")
        if event == "serverShutdown":
            return Frame("reconnect", detail="server shutdown")
        if event == "trade":
            tick = self.tick(
                data.get("s"),
                data.get("p"),
                received_at,
                exchange_ts=ms_time(data.get("T")),
                sequence=data.get("t"),
            )
            return self.ticks_frame([tick], 1)
        if event == "24hrTicker":
            tick = self.tick(
                data.get("s"),
                data.get("c"),
                received_at,
                exchange_ts=ms_time(data.get("E")),
                volume_24h=number(data.get("q")),
                change_24h=number(data.get("P")),
                sequence=data.get("L"),
            )
            return self.ticks_frame([tick], 1)
        if "b" in data and "a" in data and "s" in data:  # bookTicker has no "e"
            bid, ask = positive(data.get("b")), positive(data.get("a"))
            mid = (bid + ask) / 2 if bid and ask and ask >= bid else None
            tick = self.tick(data.get("s"), mid, received_at, sequence=data.get("u"))
            return self.ticks_frame([tick], 1)
        if isinstance(event, str):
            return Frame("info", detail=event)
        return Frame("malformed", detail="unknown event")
