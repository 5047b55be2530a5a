"""Streaming ingest: the exchanges' public WebSocket market-data feeds, beside REST polling.

One module per venue protocol (pure: frames in, ticks out), a shared connection manager
(:mod:`.manager`) and pure helpers (:mod:`.sequence`).

>>> from pricewire_ingest.catalog import load_catalog
>>> protocols = {v: cls(load_catalog().assets) for v, cls in PROTOCOLS.items()}
>>> protocols["binance"].pairs["BTCUSDT"], protocols["kraken"].pairs["BTC/USD"]
('BTC', 'BTC')
"""

from __future__ import annotations

from .binance import BinanceProtocol
from .bitstamp import BitstampProtocol
from .bybit import BybitProtocol
from .coinbase import CoinbaseProtocol
from .kraken import KrakenProtocol
from .manager import StreamManager, StreamTuning, TickSink, VenueStatus, VenueStream
from .okx import OkxProtocol
from .protocol import Frame, Tick, VenueLimits, VenueProtocol

__all__ = [
    "PROTOCOLS",
    "VENUES",
    "BinanceProtocol",
    "BitstampProtocol",
    "BybitProtocol",
    "CoinbaseProtocol",
    "Frame",
    "KrakenProtocol",
    "OkxProtocol",
    "StreamManager",
    "StreamTuning",
    "Tick",
    "TickSink",
    "VenueLimits",
    "VenueProtocol",
    "VenueStatus",
    "VenueStream",
]

PROTOCOLS: dict[str, type[VenueProtocol]] = {
    cls.venue: cls
    for cls in (
        BinanceProtocol,
        CoinbaseProtocol,
        KrakenProtocol,
        OkxProtocol,
        BybitProtocol,
        BitstampProtocol,
    )
}
VENUES: tuple[str, ...] = tuple(PROTOCOLS)
