"""Consensus price: the median of fresh quotes from several providers, outliers rejected.

Rules (``consensus``):

1. fresh: the latest quote of each provider, if younger than ``window_s``;
2. the median ``m`` of the fresh prices; a quote further than ``max_deviation_pct`` from ``m``
   is an outlier and rejected;
3. the accepted quotes must be a strict majority of the fresh ones, else the sources disagree
   and there is no price (two providers 10 % apart: which one is right?);
4. the price is the median of the accepted quotes; ``spread_pct`` their (max - min) / price;
   ``stale`` when fewer than ``min_sources`` were accepted.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..quotes import PriceQuote

__all__ = ["ConsensusPrice", "QuoteBook", "consensus", "median_of"]


@dataclass(frozen=True, slots=True)
class ConsensusPrice:
    symbol: str
    price: float
    sources: int
    spread_pct: float
    stale: bool
    change_24h: float | None
    updated_at: float  #: unix time of the newest accepted quote
    providers: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()


def median_of(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def consensus(
    symbol: str,
    quotes: Sequence[PriceQuote],
    *,
    now: float,
    window_s: float = 120.0,
    min_sources: int = 3,
    max_deviation_pct: float = 2.0,
) -> ConsensusPrice | None:
    """The consensus of ``quotes`` (one per provider), or None when there is none.

    >>> q = lambda p, v, t=0.0: PriceQuote("BTC", v, p, t)
    >>> c = consensus("BTC", [q("a", 100.0), q("b", 101.0), q("c", 99.0), q("d", 150.0)], now=10)
    >>> c.price, c.sources, c.rejected, c.stale
    (100.0, 3, ('d',), False)
    >>> consensus("BTC", [q("a", 100.0), q("b", 120.0)], now=10) is None  # no majority
    True
    >>> consensus("BTC", [q("a", 100.0, t=-200)], now=10) is None  # too old
    True
    """
    fresh = [q for q in quotes if now - q.observed_at <= window_s and q.symbol == symbol]
    if not fresh:
        return None
    middle = statistics.median(q.price for q in fresh)
    limit = middle * max_deviation_pct / 100.0
    accepted = [q for q in fresh if abs(q.price - middle) <= limit]
    if 2 * len(accepted) <= len(fresh):
        return None
    price = statistics.median(q.price for q in accepted)
    prices = [q.price for q in accepted]
    return ConsensusPrice(
        symbol=symbol,
        price=price,
        sources=len(accepted),
        spread_pct=round((max(prices) - min(prices)) / price * 100.0, 4),
        stale=len(accepted) < min_sources,
        change_24h=median_of(q.change_24h for q in accepted),
        updated_at=max(q.observed_at for q in accepted),
        providers=tuple(sorted(q.provider_id for q in accepted)),
        rejected=tuple(sorted(q.provider_id for q in fresh if q not in accepted)),
    )


class QuoteBook:
    """The latest quote of every provider for every symbol."""

    def __init__(self) -> None:
        self._latest: dict[str, dict[str, PriceQuote]] = defaultdict(dict)

    def add(self, quotes: Iterable[PriceQuote]) -> None:
        for quote in quotes:
            self._latest[quote.symbol][quote.provider_id] = quote

    def quotes(self, symbol: str) -> list[PriceQuote]:
        return list(self._latest.get(symbol, {}).values())

    def fresh(self, symbol: str, *, now: float, window_s: float) -> list[PriceQuote]:
        return [q for q in self.quotes(symbol) if now - q.observed_at <= window_s]

    def prune(self, *, now: float, max_age_s: float) -> None:
        """Forget quotes older than ``max_age_s`` (keeps memory flat)."""
        for by_provider in self._latest.values():
            for pid in [p for p, q in by_provider.items() if now - q.observed_at > max_age_s]:
                del by_provider[pid]
