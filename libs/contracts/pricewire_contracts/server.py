"""Messages ws-edge sends to WebSocket clients (the guide's section "System messages").

Data messages (``market_update``, ``price_update``, ``news``, ``alert``, ``stats_update``,
``provider_stats``) travel on NATS in exactly this shape, so another team subscribing to a
subject reads the same JSON a browser does. ``seq`` is set by the edge from the JetStream
stream sequence of the group; it is absent on the NATS subjects themselves.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .common import (
    BreakerState,
    ChainId,
    ClientType,
    Contract,
    Feed,
    Group,
    ProviderState,
    Severity,
    Symbol,
    utc_timestamp,
)

__all__ = [
    "AlertData",
    "AlertMessage",
    "AuthOk",
    "ChainHeadReading",
    "Conflated",
    "ConnectionStats",
    "ErrorCode",
    "ErrorMessage",
    "Heartbeat",
    "MarketCoin",
    "MarketUpdate",
    "NewsItem",
    "NewsMessage",
    "PongMessage",
    "PriceData",
    "PriceUpdate",
    "ProviderStatsData",
    "ProviderStatsMessage",
    "ProviderStatus",
    "ProviderSummary",
    "ResumeFailed",
    "Resumed",
    "StatsMessage",
    "StatsUpdate",
    "StreamHealth",
    "Subscribed",
    "Unsubscribed",
    "Welcome",
]

WELCOME_TEXT = "به سیستم مانیتورینگ کریپتو خوش آمدید"
__all__ += ["WELCOME_TEXT"]


class Welcome(Contract):
    """The first message on every connection.

    ``session_id`` is public (``GET /api/sessions`` lists it); ``resume_token`` is the session's
    private secret, sent to this client alone: a ``resume`` must carry it (see ``Resumed``).
    """

    type: Literal["welcome"] = "welcome"
    session_id: str
    message: str = WELCOME_TEXT
    timestamp: str = Field(default_factory=utc_timestamp)
    resume_token: str | None = None  # after the guide's fields, which keep the guide's order


class Heartbeat(Contract):
    type: Literal["heartbeat"] = "heartbeat"
    timestamp: str = Field(default_factory=utc_timestamp)


class PongMessage(Contract):
    type: Literal["pong"] = "pong"
    timestamp: str = Field(default_factory=utc_timestamp)


class Subscribed(Contract):
    type: Literal["subscribed"] = "subscribed"
    group: Group
    symbols: list[Symbol] | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


class Unsubscribed(Contract):
    type: Literal["unsubscribed"] = "unsubscribed"
    group: Group
    timestamp: str = Field(default_factory=utc_timestamp)


class AuthOk(Contract):
    type: Literal["auth_ok"] = "auth_ok"
    subject: str | None = None
    groups: list[Group] | None = None
    expires_at: str | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


ErrorCode = Literal[
    "invalid_json",
    "invalid_message",
    "unknown_type",
    "unknown_group",
    "message_too_large",
    "rate_limited",
    "too_many_subscriptions",
    "unauthorized",
    "forbidden",
    "auth_required",
    "stats_unavailable",
    "resume_failed",
    "internal_error",
]


class ErrorMessage(Contract):
    """Anything the edge rejects; the connection stays open unless a close code follows."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    request_type: str | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


class ConnectionStats(Contract):
    """The guide's ``stats_update.data`` and ``GET /api/sessions/stats`` (plus ``subscriptions``)."""

    active_connections: int = Field(ge=0)
    total_sessions: int = Field(ge=0)
    messages_sent: int = Field(ge=0)
    messages_received: int = Field(ge=0)
    client_types: dict[ClientType, int] = Field(default_factory=dict)
    subscriptions: dict[Group, int] = Field(default_factory=dict)


class StatsUpdate(Contract):
    type: Literal["stats_update"] = "stats_update"
    data: ConnectionStats
    timestamp: str = Field(default_factory=utc_timestamp)


class StatsMessage(Contract):
    """Reply to ``get_stats``: the same data as ``stats_update``."""

    type: Literal["stats"] = "stats"
    data: ConnectionStats
    timestamp: str = Field(default_factory=utc_timestamp)


class ChainHeadReading(Contract):
    """One provider's head of one chain, as one poll read it."""

    chain: ChainId
    height: int = Field(gt=0)
    behind: int = Field(
        default=0, ge=0, description="Blocks behind the highest head of the chain heard then"
    )
    block_time: str | None = Field(
        default=None, description="Time of the head block, when the provider gives it"
    )
    block_age_s: float | None = Field(
        default=None,
        ge=0,
        description="Seconds since the head block (its own time when given, else since "
        "Pricewire first saw this height: a lower bound)",
    )
    base_fee_gwei: float | None = Field(
        default=None, ge=0, description="Base fee per gas of the head block (EVM nodes)"
    )


class StreamHealth(Contract):
    """A venue's WebSocket stream (market-ingest's streaming ingest), on its provider row."""

    state: Literal["live", "degraded", "offline"] = Field(
        description="live: subscribed and receiving; degraded: reconnecting or part of its "
        "connections down (its REST adapter keeps the venue's quote fresh); offline: down for "
        "longer than the offline limit"
    )
    reason: str | None = Field(default=None, description="Why it is not live")
    ticks: int = Field(default=0, ge=0, description="Ticks taken since the start")
    reconnects: int = Field(default=0, ge=0)
    stalls: int = Field(default=0, ge=0, description="Silent stalls detected (no message)")
    sequence_gaps: int = Field(default=0, ge=0)
    malformed: int = Field(default=0, ge=0, description="Frames or entries dropped as malformed")
    last_fault: str | None = Field(default=None, description="The latest fault seen")
    last_tick_at: float | None = Field(default=None, description="Unix time of the latest tick")


class ProviderStatus(Contract):
    provider_id: str
    name: str
    category: str
    status: ProviderState
    success_rate: float = Field(ge=0, le=100)
    latency_ms: float | None = None
    breaker: BreakerState = "closed"
    last_checked: str | None = None
    upstream: str | None = Field(
        default=None, description="The venue or data origin the provider relays (binance, ...)"
    )
    mirror: bool = Field(
        default=False,
        description="Another catalog entry relays the same upstream first: kept for failover, "
        "one vote with it in the consensus",
    )
    feeds: list[Feed] = Field(
        default_factory=list, description="What the provider's answers feed (from its adapter)"
    )
    chain: ChainHeadReading | None = Field(
        default=None,
        description="The chain head its latest poll read (chain feeds; none after a failed "
        "poll or when the provider went silent)",
    )
    stream: StreamHealth | None = Field(
        default=None, description="A venue's WebSocket stream: its state and why"
    )


class ProviderSummary(Contract):
    total_providers: int = Field(ge=0)
    online: int = Field(ge=0)
    offline: int = Field(ge=0)
    overall_success_rate: float = Field(ge=0, le=100)
    rate_limited: int = Field(default=0, ge=0)
    disabled: int = Field(default=0, ge=0)


class ProviderStatsData(Contract):
    summary: ProviderSummary
    providers: list[ProviderStatus] = Field(default_factory=list)


class ProviderStatsMessage(Contract):
    type: Literal["provider_stats"] = "provider_stats"
    data: ProviderStatsData
    timestamp: str = Field(default_factory=utc_timestamp)


class MarketCoin(Contract):
    price: float
    change_24h: float | None = None
    market_cap: float | None = None
    volume_24h: float | None = None


class MarketUpdate(Contract):
    """``data`` is keyed by the lower-case symbol, as in the guide: ``{"btc": {...}}``."""

    type: Literal["market_update"] = "market_update"
    data: dict[str, MarketCoin]
    seq: int | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


#: ``PriceData.venues`` holds at most this many upstream names
MAX_VENUES = 32


class PriceData(Contract):
    """The guide's three fields, then the consensus details (docs/consensus.md).

    One vote per upstream (venue or data origin): ``venues`` names the upstreams whose quotes
    made the price, ``sources`` is how many. ``confidence`` is the half-width in USD of the
    interval the votes support around ``price`` (Pyth-style), ``confidence_pct`` the same in
    percent of the price.
    """

    symbol: Symbol
    price: float = Field(gt=0, allow_inf_nan=False)
    change_24h: float | None = None
    sources: int = Field(
        default=1, ge=0, description="Upstreams that voted: len(venues) when venues is given"
    )
    spread_pct: float | None = None
    stale: bool = False
    updated_at: float | None = Field(default=None, description="Unix time of the newest quote")
    venues: list[str] = Field(
        default_factory=list,
        max_length=MAX_VENUES,
        description="The upstreams that voted (venues or data origins), sorted, each once",
    )
    confidence: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="USD half-width of the consensus interval: 0 <= confidence <= price",
    )
    confidence_pct: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="confidence / price * 100"
    )

    @model_validator(mode="after")
    def _coherent(self) -> PriceData:
        if self.venues:
            if len(set(self.venues)) != len(self.venues):
                raise ValueError("venues names an upstream twice")
            if self.sources != len(self.venues):
                raise ValueError("sources must equal len(venues)")
        if self.confidence is not None and self.confidence > self.price:
            raise ValueError("confidence must not exceed the price")
        return self


class PriceUpdate(Contract):
    type: Literal["price_update"] = "price_update"
    data: PriceData
    seq: int | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


class AlertData(Contract):
    alert_type: str = Field(
        description="price_threshold, price_move, price_stale, price_fresh, dislocation, "
        "dislocation_cleared, provider_outage, provider_recovered, sentiment_shift, ..."
    )
    message: str
    severity: Severity
    symbol: Symbol | None = None
    provider_id: str | None = None
    value: float | None = None


class AlertMessage(Contract):
    type: Literal["alert"] = "alert"
    data: AlertData
    seq: int | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


class NewsItem(Contract):
    id: str = Field(description="Stable id used for de-duplication (hash of the canonical URL)")
    title: str
    url: str
    source: str
    published_at: str | None = None
    summary: str | None = None


class NewsMessage(Contract):
    type: Literal["news"] = "news"
    data: NewsItem
    seq: int | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


class Resumed(Contract):
    """A resume succeeded. ``resume_token`` replaces the old one, which no longer works."""

    type: Literal["resumed"] = "resumed"
    session_id: str
    resume_token: str | None = None
    replayed: dict[Group, int] = Field(default_factory=dict)
    last_seq: dict[Group, int] = Field(default_factory=dict)
    timestamp: str = Field(default_factory=utc_timestamp)


class Conflated(Contract):
    """Sent to a client that fell behind, before the latest values that replaced its backlog.

    ``replaced``: updates superseded by a newer value of the same symbol (or snapshot) and not
    sent; ``dropped``: news, alerts or broadcasts lost because even the bounded backlog was full.
    """

    type: Literal["conflated"] = "conflated"
    replaced: int = Field(ge=0)
    dropped: int = Field(default=0, ge=0)
    timestamp: str = Field(default_factory=utc_timestamp)


class ResumeFailed(Contract):
    """A resume did not happen; the client is subscribed afresh and gets snapshots instead.

    ``reason`` is one of ``unknown_session``, ``invalid_resume_token`` (wrong or missing
    token), ``wrong_user`` (the session belongs to another authenticated subject),
    ``history_gone`` (the stream no longer reaches the client's ``last_seq``) and
    ``unavailable`` (NATS or the stream failed during the resume); ``detail`` says it in words.
    """

    type: Literal["resume_failed"] = "resume_failed"
    reason: str
    detail: str | None = None
    session_id: str | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


def dump_extra(message: Contract) -> dict[str, Any]:
    """A message as JSON-ready data, ``None`` fields left out."""
    return message.model_dump(mode="json", exclude_none=True)


__all__ += ["dump_extra"]
