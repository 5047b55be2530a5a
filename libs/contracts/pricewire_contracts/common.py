"""Vocabulary shared by every contract: groups, client types, severities, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DATA_GROUPS",
    "FEEDS",
    "BreakerState",
    "ChainId",
    "ChainState",
    "ClientType",
    "Contract",
    "Feed",
    "Group",
    "PollOutcome",
    "ProviderState",
    "Severity",
    "Symbol",
    "utc_now",
    "utc_timestamp",
]


class Contract(BaseModel):
    """Base of every message that crosses a process boundary.

    Unknown fields are kept (``extra="allow"``) so that an older reader passes a newer
    writer's additions through untouched: additions to a ``v1`` message are always optional
    fields, never renamed or removed ones.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Group(StrEnum):
    """The subscription groups of the guide. ``all`` means every other group."""

    MARKET = "market"
    PRICES = "prices"
    NEWS = "news"
    ALERTS = "alerts"
    ALL = "all"


#: The groups that carry data; ``all`` is their union.
DATA_GROUPS: tuple[Group, ...] = (Group.MARKET, Group.PRICES, Group.NEWS, Group.ALERTS)


class ClientType(StrEnum):
    BROWSER = "browser"
    MOBILE = "mobile"
    API = "api"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


#: How one poll of a provider ended.
PollOutcome = Literal[
    "ok",
    "timeout",
    "http_error",
    "rate_limited",
    "bad_response",
    "network_error",
    "breaker_open",
    "disabled",
]
#: A provider's status as clients see it (``disabled``: it needs a key nobody configured).
ProviderState = Literal["online", "offline", "rate_limited", "disabled"]
#: A provider's circuit breaker.
BreakerState = Literal["closed", "open", "half_open"]

#: What a provider's answers feed: prices (the consensus), news, sentiment, chain heads
#: (``chain.<chain>``), or nothing but its own availability (``probe``).
Feed = Literal["prices", "news", "sentiment", "chain", "probe"]
#: Every feed, in the order a ``feeds`` list is written.
FEEDS: tuple[Feed, ...] = ("prices", "news", "sentiment", "chain", "probe")
#: A chain's network status: ``ok`` while its head advances, ``stalled`` when no new block was
#: seen for much longer than its block time.
ChainState = Literal["ok", "stalled"]
#: A chain's name in lower case (``ethereum``, ``bsc``, ``solana``); a NATS subject token.
ChainId = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")]

#: An upper-case ticker such as ``BTC``; it is also a NATS subject token.
Symbol = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}$")]


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_timestamp(moment: datetime | None = None) -> str:
    """The guide's timestamp format: ISO 8601, UTC, whole seconds, no offset.

    >>> utc_timestamp(datetime(2024, 1, 15, 10, 30, tzinfo=UTC))
    '2024-01-15T10:30:00'
    """
    moment = moment or utc_now()
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
