"""Internal events between the services (never sent to WebSocket clients as such)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import (
    BreakerState,
    ChainId,
    ChainState,
    ClientType,
    Contract,
    Feed,
    Group,
    PollOutcome,
    ProviderState,
    Symbol,
    utc_timestamp,
)
from .server import ChainHeadReading, StreamHealth

__all__ = [
    "EDGE_SESSION_PAGE_BYTES",
    "EDGE_SESSION_PAGE_MAX",
    "BroadcastMessage",
    "ChainStatus",
    "EdgeReport",
    "EdgeSessionList",
    "EdgeSessionsRequest",
    "ProviderHealth",
    "ProviderQuotes",
    "QuoteReading",
    "SessionActivity",
    "SessionClosed",
    "SessionOpened",
    "StatsRequest",
    "StreamTick",
]


def _boot_id() -> Any:
    return Field(
        default=None, description="The publishing edge's boot (new at every start of the edge)"
    )


def _event_seq() -> Any:
    return Field(
        default=None,
        ge=1,
        description="1, 2, 3... per edge boot, over the session events (opened and closed) "
        "it published: a reader can see a gap",
    )


class SessionOpened(Contract):
    """Published by an edge when a client's WebSocket opens (or resumes: ``resumed=True``)."""

    event: Literal["opened"] = "opened"
    session_id: str
    edge_id: str
    client_type: ClientType
    connected_at: str
    resumed: bool = False
    user: str | None = None
    boot_id: str | None = _boot_id()
    event_seq: int | None = _event_seq()


class SessionClosed(Contract):
    event: Literal["closed"] = "closed"
    session_id: str
    edge_id: str
    closed_at: str
    reason: str = "client_closed"
    close_code: int | None = None
    boot_id: str | None = _boot_id()
    event_seq: int | None = _event_seq()


class SessionActivity(Contract):
    """One batch per edge per report interval: the last activity of each session that had any."""

    event: Literal["activity"] = "activity"
    edge_id: str
    last_activity: dict[str, str] = Field(default_factory=dict)


class EdgeReport(Contract):
    """An edge's counters, every ``report_interval_s``. Counters restart at zero with the edge.

    ``boot_id`` changes on every edge start, so a reader can tell a restart (counters reset)
    from a decrease; ``sequence`` counts reports within one boot. The report has the same
    size whatever the number of sessions: it carries no session list (an edge answers
    :class:`EdgeSessionsRequest` on ``edge.sessions.<edge_id>`` for that).
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
    session_events: int = Field(
        default=0, ge=0, description="Session events (opened + closed) published this boot"
    )
    session_events_unconfirmed: int = Field(
        default=0,
        ge=0,
        description="Of those, the events JetStream did not acknowledge (perhaps lost): "
        "when it grows, the registry asks the edge for its session list",
    )
    draining: bool = False


#: Most session ids in one :class:`EdgeSessionList` page; the edge also stops a page at
#: ``EDGE_SESSION_PAGE_BYTES`` of ids, so that a reply stays far below NATS's 1 MiB max_payload.
EDGE_SESSION_PAGE_MAX = 10_000
EDGE_SESSION_PAGE_BYTES = 512 * 1024


class EdgeSessionsRequest(Contract):
    """Request on ``edge.sessions.<edge_id>``: one page of the edge's live session ids.

    The registry sends it only to reconcile (the first report of an edge it has not heard
    since it started, a new boot, or unconfirmed session events), never every interval.
    """

    after: str | None = Field(
        default=None,
        max_length=256,
        description="The previous page's next_cursor (opaque); none for the first page",
    )
    limit: int = Field(default=EDGE_SESSION_PAGE_MAX, ge=1, le=EDGE_SESSION_PAGE_MAX)


class EdgeSessionList(Contract):
    """The reply: session ids in id order, after ``after``, as of the moment it was built."""

    edge_id: str
    boot_id: str
    session_events: int = Field(ge=0, description="EdgeReport.session_events at that moment")
    session_events_unconfirmed: int = Field(
        ge=0, description="EdgeReport.session_events_unconfirmed at that moment"
    )
    session_ids: list[str]
    next_cursor: str | None = Field(
        default=None, description="Ask again with after=next_cursor; none: this was the last page"
    )


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
    upstream: str | None = Field(
        default=None, description="The venue or data origin the provider relays (catalog)"
    )
    mirror: bool = Field(
        default=False, description="An earlier catalog entry relays the same upstream"
    )
    feeds: list[Feed] = Field(
        default_factory=list, description="What the provider's answers feed (from its adapter)"
    )
    chain: ChainHeadReading | None = Field(
        default=None, description="The chain head this poll read (successful chain polls)"
    )
    stream: StreamHealth | None = Field(
        default=None, description="A venue's WebSocket stream (provider <venue>_stream)"
    )


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


class ChainStatus(Contract):
    """The head of one chain, published by market-ingest on ``chain.<chain>`` after every
    successful poll of one of the chain's providers: one message per chain per poll.

    Several providers of one chain are merged, not published one by one: the **highest head**
    heard from any of them within the window wins (a node that lags does not pull the chain
    back), and ``provider_id`` names the provider that reported it first. ``providers`` and
    ``spread_blocks`` say how many agree and how far apart they are; each provider's own head
    is on its ``provider_stats`` row. ``block_time`` and ``base_fee_gwei`` come from the
    provider when it gives them (EVM nodes: the ``latest`` block; TRON: the block header;
    Blockchair: ``best_block_time``); ``block_age_s`` falls back to the time since Pricewire
    first saw the height. ``status`` is ``stalled`` when the head has not advanced for ten
    block times (at least three minutes).
    """

    chain: ChainId
    height: int = Field(gt=0, description="The highest head heard within the window")
    provider_id: str = Field(description="The provider that reported this height first")
    status: ChainState
    block_time: str | None = Field(
        default=None, description="Time of the head block, when a provider gives it"
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
    providers: int = Field(ge=1, description="Providers of this chain heard within the window")
    spread_blocks: int = Field(
        default=0, ge=0, description="Highest minus lowest head among those providers"
    )
    timestamp: str = Field(default_factory=utc_timestamp)


class StreamTick(Contract):
    """One venue's streamed price for one symbol, published by market-ingest on
    ``tick.<venue>.<SYMBOL>`` as it arrives from the venue's public WebSocket feed (core NATS
    only: no stream keeps ticks). The price is finite and positive; the venue's pair may quote
    USD or USDT (both count as USD in the consensus)."""

    venue: str = Field(pattern=r"^[a-z0-9_-]{1,64}$", description="binance, coinbase, kraken, ...")
    symbol: Symbol
    pair: str = Field(description="The venue's market: BTCUSDT, BTC-USD, BTC/USD")
    price: float = Field(gt=0, allow_inf_nan=False)
    exchange_ts: float | None = Field(
        default=None, description="Unix time the venue gives for the trade or ticker, if any"
    )
    received_at: float = Field(description="Unix time market-ingest received the frame")
    volume_24h: float | None = Field(default=None, description="USD, when the venue gives it")
    change_24h: float | None = Field(default=None, description="Percent, when the venue gives it")
    sequence: int | None = Field(
        default=None, description="The venue's number of the message, where it numbers them"
    )
