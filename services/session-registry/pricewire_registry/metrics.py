"""session-registry's Prometheus metrics (label values come from small fixed sets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BROADCASTS",
    "EVENTS",
    "LIVE_SESSIONS",
    "RECONCILIATIONS",
    "REQUEST_SECONDS",
    "SESSIONS_CLOSED",
    "SESSIONS_OPENED",
]

REQUEST_SECONDS = Histogram(
    "pricewire_registry_http_request_duration_seconds",
    "REST request latency",
    ["method", "route", "status"],  # route: the path template, never the raw path
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENTS = Counter(
    "pricewire_registry_events_total",
    "Session events consumed from the sessions stream",
    [
        "kind",
        "outcome",
    ],  # kind: opened|closed|activity|unknown; outcome: applied|noop|invalid|retry
)
SESSIONS_OPENED = Counter(
    "pricewire_registry_sessions_opened_total", "New (not resumed) sessions recorded"
)
SESSIONS_CLOSED = Counter(
    "pricewire_registry_sessions_closed_total",
    "Sessions closed, by why",
    ["reason"],  # event | edge_lost | not_listed
)
RECONCILIATIONS = Counter(
    "pricewire_registry_reconciliations_total",
    "Session-list requests to an edge",
    ["reason", "outcome"],  # first_report|new_boot|unconfirmed_events; done|no_answer
)
LIVE_SESSIONS = Gauge("pricewire_registry_live_sessions", "Live sessions in this replica's view")
BROADCASTS = Counter(
    "pricewire_registry_broadcasts_total",
    "POST /api/broadcast requests",
    ["outcome"],  # published | refused | unavailable
)
