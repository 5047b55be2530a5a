"""stats' Prometheus metrics (label values come from small fixed sets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = [
    "ACTIVE_CONNECTIONS",
    "LIVE_EDGES",
    "PERSIST_FAILURES",
    "PROVIDERS",
    "PUBLISHED",
    "RECEIVED",
    "STATS_REQUESTS",
]

RECEIVED = Counter(
    "pricewire_stats_received_messages_total",
    "Edge reports and provider-health events received",
    ["kind", "outcome"],  # kind: edge_report|provider_health; outcome: applied|invalid
)
STATS_REQUESTS = Counter(
    "pricewire_stats_requests_total",
    "stats.get requests answered",
    ["with_report"],  # true|false
)
PUBLISHED = Counter(
    "pricewire_stats_published_messages_total",
    "Messages published",
    ["type"],  # stats_update|provider_stats
)
PERSIST_FAILURES = Counter(
    "pricewire_stats_persist_failures_total", "Failed writes of the totals to KV"
)
LIVE_EDGES = Gauge("pricewire_stats_live_edges", "Edges reporting within their interval")
ACTIVE_CONNECTIONS = Gauge(
    "pricewire_stats_active_connections", "WebSocket connections over every live edge"
)
PROVIDERS = Gauge(
    "pricewire_stats_providers",
    "Providers by status in the latest summary",
    ["status"],  # online|offline|rate_limited|disabled
)
