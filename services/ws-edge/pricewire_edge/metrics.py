"""ws-edge metrics (the guide's counters plus fan-out health)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pricewire_contracts import ClientType, EdgeReport


class SessionMetrics(Collector):
    """The guide's figures (open connections, by client type, sessions, messages sent and
    received), read from the edge's own report (:meth:`.sessions.Sessions.report`) when
    ``/metrics`` is scraped.

    The edge counts them as plain ints for its reports anyway; counting each event through
    prometheus_client as well (a lock and label checks per call) took seven calls per client
    set up, and one per reply after that. One edge per process: the last one wired in
    (``report``) is exposed; until then, none of these metrics is.
    """

    def __init__(self) -> None:
        self.report: Callable[[], EdgeReport] | None = None
        REGISTRY.register(self)

    def collect(self) -> Iterator[Metric]:
        if self.report is None:
            return
        r = self.report()
        yield GaugeMetricFamily(
            "pricewire_ws_active_connections",
            "Open WebSocket connections",
            value=r.active_connections,
        )
        by_type = GaugeMetricFamily(
            "pricewire_ws_connections",
            "Open WebSocket connections by client type",
            labels=["client_type"],
        )
        for client_type in ClientType:
            by_type.add_metric([client_type.value], r.client_types.get(client_type, 0))
        yield by_type
        yield CounterMetricFamily(
            "pricewire_ws_sessions", "WebSocket sessions opened", value=r.total_sessions
        )
        yield CounterMetricFamily(
            "pricewire_ws_messages_sent", "Messages sent to clients", value=r.messages_sent
        )
        yield CounterMetricFamily(
            "pricewire_ws_messages_received",
            "Messages received from clients",
            value=r.messages_received,
        )


SESSION_METRICS = SessionMetrics()
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
