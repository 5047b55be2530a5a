"""What a fanned-out frame carries, as a typed key: for ``max_rate_hz`` and for slow clients.

A :class:`FrameKey` names what a newer frame may replace: a symbol's price, the market
snapshot, the provider stats, the online count, the heartbeat. Throttling (a subscription's
``max_rate_hz``) only ever applies to the kinds in :data:`THROTTLED`; everything else, and
every frame sent without a key (replies, errors, pings, Close), is never throttled.

Keys are built once per message, never per receiver: the constants below, and
:func:`price_key`, which hands out one key per symbol. A key's hash is computed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

__all__ = [
    "HEARTBEAT_KEY",
    "MARKET_KEY",
    "PROVIDER_STATS_KEY",
    "STATS_KEY",
    "THROTTLED",
    "FrameKey",
    "Stream",
    "price_key",
]


class Stream(StrEnum):
    """The kind of a keyed frame."""

    PRICE = "price"  #: one symbol's price_update (the key carries the symbol)
    MARKET = "market"  #: market_update
    PROVIDER_STATS = "provider_stats"  #: the providers' status, sent to market subscribers
    STATS = "stats"  #: stats_update (online count)
    HEARTBEAT = "heartbeat"


#: The only kinds a subscription's ``max_rate_hz`` slows down.
THROTTLED = frozenset({Stream.PRICE, Stream.MARKET})


@dataclass(frozen=True, slots=True, eq=False)
class FrameKey:
    """``(stream, symbol)``; equal keys replace each other for a slow or throttled client."""

    stream: Stream
    symbol: str | None = None
    _hash: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.stream, self.symbol)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, FrameKey):
            return NotImplemented
        return self.stream is other.stream and self.symbol == other.symbol


MARKET_KEY = FrameKey(Stream.MARKET)
PROVIDER_STATS_KEY = FrameKey(Stream.PROVIDER_STATS)
STATS_KEY = FrameKey(Stream.STATS)
HEARTBEAT_KEY = FrameKey(Stream.HEARTBEAT)


@lru_cache(maxsize=16_384)
def price_key(symbol: str) -> FrameKey:
    """The key of ``symbol``'s prices (the same object for every message of that symbol)."""
    return FrameKey(Stream.PRICE, symbol)
