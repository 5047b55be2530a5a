"""What a poll yields, in the domain's terms: price quotes, news entries, sentiment, chain heads.

Plain frozen dataclasses (no I/O, no pydantic): they live only inside the process.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChainHead", "NewsEntry", "PollData", "PriceQuote", "SentimentReading"]


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """One provider's USD price for one symbol; ``price`` is always finite and positive."""

    symbol: str
    price: float
    provider_id: str
    observed_at: float  #: unix seconds (the provider's own time when it gives one)
    change_24h: float | None = None  #: percent
    market_cap: float | None = None  #: USD
    volume_24h: float | None = None  #: USD
    #: the venue or data origin (the catalog entry's ``upstream``); empty: the provider id
    upstream: str = ""


@dataclass(frozen=True, slots=True)
class NewsEntry:
    id: str  #: hash of the canonical URL: the same story from two feeds has one id
    title: str
    url: str
    source: str
    published_at: float | None = None  #: unix seconds
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class SentimentReading:
    value: int  #: 0 (extreme fear) .. 100 (extreme greed)
    classification: str


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A chain's head as one provider reported it. ``chain`` is the adapter's guess (a
    provider's catalog ``chain`` overrides it); the rest only when the provider gives it."""

    chain: str
    height: int
    block_time: float | None = None  #: unix seconds of the head block
    base_fee_gwei: float | None = None  #: base fee per gas of the head block (EIP-1559)


@dataclass(frozen=True, slots=True)
class PollData:
    """A successful poll: any of these may be empty (a health probe yields nothing)."""

    quotes: tuple[PriceQuote, ...] = ()
    news: tuple[NewsEntry, ...] = ()
    sentiment: SentimentReading | None = None
    chain_head: ChainHead | None = None
    items: int = 0  #: how many records the answer held (listings, TVL rows, ...)
