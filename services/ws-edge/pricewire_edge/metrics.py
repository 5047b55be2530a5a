"""ws-edge metrics (the guide's counters plus fan-out health)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ACTIVE_CONNECTIONS = Gauge("pricewire_ws_active_connections", "Open WebSocket connections")
CONNECTIONS_BY_TYPE = Gauge(
    "pricewire_ws_connections", "Open WebSocket connections by client type", ["client_type"]
)
SESSIONS = Counter("pricewire_ws_sessions_total", "WebSocket sessions opened")
MESSAGES_SENT = Counter("pricewire_ws_messages_sent_total", "Messages sent to clients")
MESSAGES_RECEIVED = Counter(
    "pricewire_ws_messages_received_total", "Messages received from clients"
)
CLIENT_ERRORS = Counter(
    "pricewire_ws_client_errors_total", "Client messages refused, by error code", ["code"]
)
HANDSHAKES_REFUSED = Counter(
    "pricewire_ws_handshakes_refused_total", "WebSocket handshakes refused, by reason", ["reason"]
)
FANOUT_LATENCY = Histogram(
    "pricewire_fanout_latency_seconds",
    "Time from receiving a NATS message to queueing it for every receiver",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
FANOUT_MESSAGES = Counter(
    "pricewire_fanout_messages_total", "NATS messages fanned out, by group", ["group"]
)
BAD_UPSTREAM = Counter(
    "pricewire_fanout_bad_messages_total", "NATS messages dropped as malformed, by group", ["group"]
)
SLOW_CLIENT_CONFLATIONS = Counter(
    "pricewire_ws_slow_client_conflations_total", "Times a client fell behind and was conflated"
)
SLOW_CLIENT_DROPS = Counter(
    "pricewire_ws_slow_client_drops_total", "Clients closed for staying stuck behind a full buffer"
)
CONFLATED_MESSAGES = Counter(
    "pricewire_ws_conflated_messages_total", "Messages replaced by a newer value for a slow client"
)
CLOSES = Counter(
    "pricewire_ws_closes_total", "Connections closed by the edge, by close code", ["code"]
)
AUTH_RESULTS = Counter(
    "pricewire_ws_auth_total", "Token checks, by result (ok or the refusal reason)", ["result"]
)
RESUMES = Counter(
    "pricewire_ws_resumes_total",
    "Resume requests, by result: ok, or the resume_failed reason (invalid_resume_token, ...)",
    ["result"],
)
