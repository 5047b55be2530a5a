"""market-ingest's Prometheus metrics. Label values come from the catalog (bounded) or from
small fixed sets (outcomes, states, categories, symbols)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BREAKER_STATES",
    "CONSENSUS_CONFIDENCE",
    "CONSENSUS_SOURCES",
    "CONSENSUS_SPREAD",
    "NEWS_DUPLICATES",
    "POLLS_DEFERRED",
    "PROVIDERS",
    "PROVIDERS_ONLINE",
    "PROVIDER_LATENCY",
    "PROVIDER_REQUESTS",
    "PUBLISHED",
    "PUBLISH_ERRORS",
    "PUBLISH_RETRIES",
]

PROVIDER_REQUESTS = Counter(
    "pricewire_provider_requests_total",
    "Polls of a provider by outcome",
    ["provider", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "pricewire_provider_latency_seconds",
    "Time from request to parsed answer, by provider category",
    ["category"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BREAKER_STATES = Gauge(
    "pricewire_provider_breaker_state", "Providers of this shard per breaker state", ["state"]
)
PROVIDERS_ONLINE = Gauge(
    "pricewire_providers_online", "Providers of this shard whose last poll succeeded"
)
PROVIDERS = Gauge("pricewire_providers", "Providers of this shard by status", ["status"])
POLLS_DEFERRED = Counter(
    "pricewire_provider_polls_deferred_total",
    "Polls pushed back before any request (rate_limit: token bucket empty; breaker: open)",
    ["reason"],
)
CONSENSUS_SOURCES = Gauge(
    "pricewire_consensus_sources", "Upstreams that voted in the last consensus", ["symbol"]
)
CONSENSUS_CONFIDENCE = Gauge(
    "pricewire_consensus_confidence_ratio",
    "Confidence half-width / price of the last consensus",
    ["symbol"],
)
CONSENSUS_SPREAD = Gauge(
    "pricewire_consensus_spread_ratio", "(max - min) / price of the accepted quotes", ["symbol"]
)
PUBLISH_RETRIES = Counter(
    "pricewire_ingest_publish_retries_total",
    "JetStream publishes tried again because the stream did not acknowledge in time",
)
PUBLISHED = Counter("pricewire_ingest_published_total", "Messages published by kind", ["kind"])
PUBLISH_ERRORS = Counter("pricewire_ingest_publish_errors_total", "Publishes that failed", ["kind"])
NEWS_DUPLICATES = Counter("pricewire_news_duplicates_total", "News items dropped as already seen")
