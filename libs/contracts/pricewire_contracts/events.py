"""Internal events between the services (never sent to WebSocket clients as such)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import (
    BreakerState,
    ClientType,
    Contract,
    Group,
    PollOutcome,
    ProviderState,
    Symbol,
)

__all__ = [
    "BroadcastMessage",
    "EdgeReport",
    "ProviderHealth",
    "ProviderQuotes",
    "QuoteReading",
    "SessionActivity",
    "SessionClosed",
    "SessionOpened",
    "StatsRequest",
]


class SessionOpened(Contract):
    """Published by an edge when a client's WebSocket opens (or resumes: ``resumed=True``)."""

    event: Literal["opened"] = "opened"
    session_id: str
    edge_id: str
    client_type: ClientType
    connected_at: str
    resumed: bool = False
    user: str | None = None


class SessionClosed(Contract):
    event: Literal["closed"] = "closed"
    session_id: str
    edge_id: str
    closed_at: str
    reason: str = "client_closed"
    close_code: int | None = None


class SessionActivity(Contract):
    """One batch per edge per report interval: the last activity of each session that had any."""

    event: Literal["activity"] = "activity"
    edge_id: str
    last_activity: dict[str, str] = Field(default_factory=dict)


class EdgeReport(Contract):
    """An edge's counters, every ``report_interval_s``. Counters restart at zero with the edge.

    ``boot_id`` changes on every edge start, so a reader can tell a restart (counters reset)
    from a decrease; ``sequence`` counts reports within one boot.
    """

    edge_id: str
    boot_id: str
    sequence: int = Field(ge=0)
    report_interval_s: float = Field(gt=0)
    sent_at: str
    active_connections: int = Field(ge=0)
    total_sessions: int = Field(ge=0)
    messages_sent: int = Field(ge=0)
    messages_received: int = Field(ge=0)
    client_types: dict[ClientType, int] = Field(default_factory=dict)
    subscriptions: dict[Group, int] = Field(default_factory=dict)
    session_ids: list[str] = Field(default_factory=list)
    draining: bool = False


class BroadcastMessage(Contract):
    """Body of ``POST /api/broadcast``; published as ``message`` alone on the broadcast subject."""

    message: dict[str, Any]
    group: Group


class StatsRequest(Contract):
    """Request on the ``stats.get`` subject; the reply is a ``stats`` message.

    An edge sends its current :class:`EdgeReport` along, so that the answer already counts a
    client that connected a moment ago (the status bar is never one client behind).
    """

    edge_id: str | None = None
    session_id: str | None = None
    report: EdgeReport | None = None


class ProviderHealth(Contract):
    """Published by market-ingest after every poll of a provider."""

    provider_id: str
    name: str
    category: str
    outcome: PollOutcome
    status: ProviderState
    latency_ms: float | None = None
    breaker: BreakerState = "closed"
    success_rate: float = Field(
        ge=0, le=100, description="Percent of successful polls in the window"
    )
    window_polls: int = Field(default=0, ge=0)
    checked_at: str
    detail: str | None = None
    retry_after_s: float | None = None
    shard: int = 0


class QuoteReading(Contract):
    """One provider's USD price for one symbol, as one poll read it."""

    symbol: Symbol
    price: float = Field(gt=0, allow_inf_nan=False)
    observed_at: float = Field(description="Unix time of the quote (the provider's own when given)")
    change_24h: float | None = Field(default=None, description="Percent")
    market_cap: float | None = Field(default=None, description="USD")
    volume_24h: float | None = Field(default=None, description="USD")


class ProviderQuotes(Contract):
    """The quotes of one poll, published by an ingest shard that does not compute the consensus.

    Several ingest replicas split the catalog; one of them (the consensus shard) publishes
    prices, so the others hand it what they polled on this subject.
    """

    provider_id: str
    category: str
    shard: int = Field(ge=0)
    quotes: list[QuoteReading] = Field(min_length=1)
