"""Streaming ingest's Prometheus metrics. Labels: ``venue`` (the six venues), and small fixed
sets (frame kinds, reconnect reasons, states)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "STREAM_CONNECTED",
    "STREAM_MALFORMED",
    "STREAM_MESSAGES",
    "STREAM_RECONNECTS",
    "STREAM_SEQUENCE_GAPS",
    "STREAM_STALE",
    "STREAM_STALLS",
    "STREAM_STATE",
    "STREAM_TICKS",
    "STREAM_TICK_LAG",
]

STREAM_MESSAGES = Counter(
    "pricewire_stream_messages_total", "Frames received from a venue by kind", ["venue", "kind"]
)
STREAM_TICKS = Counter(
    "pricewire_stream_ticks_total", "Valid ticks taken from a venue's stream", ["venue"]
)
STREAM_MALFORMED = Counter(
    "pricewire_stream_malformed_total",
    "Frames or tick entries dropped as malformed (unreadable, price not finite and positive)",
    ["venue"],
)
STREAM_SEQUENCE_GAPS = Counter(
    "pricewire_stream_sequence_gaps_total",
    "Skipped sequence numbers seen (the next message resynchronises)",
    ["venue"],
)
STREAM_STALE = Counter(
    "pricewire_stream_stale_total",
    "Ticks dropped because their sequence number was not newer than the last one taken",
    ["venue"],
)
STREAM_STALLS = Counter(
    "pricewire_stream_stalls_total",
    "Connections closed because no message came for the venue's stall limit",
    ["venue"],
)
STREAM_RECONNECTS = Counter(
    "pricewire_stream_reconnects_total",
    "Reconnects of a venue's stream by reason",
    ["venue", "reason"],
)
STREAM_CONNECTED = Gauge(
    "pricewire_stream_connections_live", "Subscribed connections to a venue", ["venue"]
)
STREAM_STATE = Gauge(
    "pricewire_stream_state", "1 for a venue's current stream state", ["venue", "state"]
)
STREAM_TICK_LAG = Histogram(
    "pricewire_stream_tick_lag_seconds",
    "From the venue's time in a tick to its arrival",
    ["venue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
