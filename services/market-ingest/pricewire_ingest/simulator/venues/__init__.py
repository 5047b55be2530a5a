"""Simulated exchange WebSocket venues (Binance, Coinbase, Kraken v2, OKX, Bybit, Bitstamp)
for the streaming ingest: :class:`VenueServer` and :func:`start_venues`."""

from __future__ import annotations

from .dialects import DIALECTS, Dialect
from .server import (
    FAULT_MODES,
    FaultMode,
    VenueHub,
    VenueServer,
    start_hub,
    start_venues,
    venue_routes,
)

__all__ = [
    "DIALECTS",
    "FAULT_MODES",
    "Dialect",
    "FaultMode",
    "VenueHub",
    "VenueServer",
    "start_hub",
    "start_venues",
    "venue_routes",
]
