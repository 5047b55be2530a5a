"""Messages ws-edge sends to WebSocket clients (the guide's section "System messages").

Data messages (``market_update``, ``price_update``, ``news``, ``alert``, ``stats_update``,
``provider_stats``) travel on NATS in exactly this shape, so another team subscribing to a
subject reads the same JSON a browser does. ``seq`` is set by the edge from the JetStream
stream sequence of the group; it is absent on the NATS subjects themselves.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import (
    BreakerState,
    ClientType,
    Contract,
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
    "Subscribed",
    "Unsubscribed",
    "Welcome",
]

WELCOME_TEXT = "به سیستم مانیتورینگ کریپتو خوش آمدید"
__all__ += ["WELCOME_TEXT"]


class Welcome(Contract):
    type: Literal["welcome"] = "welcome"
    session_id: str
    message: str = WELCOME_TEXT
    timestamp: str = Field(default_factory=utc_timestamp)


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


class ProviderStatus(Contract):
    provider_id: str
    name: str
    category: str
    status: ProviderState
    success_rate: float = Field(ge=0, le=100)
    latency_ms: float | None = None
    breaker: BreakerState = "closed"
    last_checked: str | None = None


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


class PriceData(Contract):
    """The guide's three fields, then the consensus details."""

    symbol: Symbol
    price: float = Field(gt=0, allow_inf_nan=False)
    change_24h: float | None = None
    sources: int = Field(default=1, ge=0)
    spread_pct: float | None = None
    stale: bool = False
    updated_at: float | None = Field(default=None, description="Unix time of the newest quote")


class PriceUpdate(Contract):
    type: Literal["price_update"] = "price_update"
    data: PriceData
    seq: int | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


class AlertData(Contract):
    alert_type: str
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
    type: Literal["resumed"] = "resumed"
    session_id: str
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
    type: Literal["resume_failed"] = "resume_failed"
    reason: str
    session_id: str | None = None
    timestamp: str = Field(default_factory=utc_timestamp)


def dump_extra(message: Contract) -> dict[str, Any]:
    """A message as JSON-ready data, ``None`` fields left out."""
    return message.model_dump(mode="json", exclude_none=True)


__all__ += ["dump_extra"]
