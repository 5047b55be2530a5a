"""Consensus price: one vote per upstream, outliers rejected, a weighted median and a confidence.

Pure: no I/O, no clock (``now`` is passed in). docs/consensus.md explains the method with a
worked example. Rules (``consensus``):

1. **votes**: of the quotes younger than ``window_s``, the freshest per *upstream* (the venue or
   data origin: two catalog entries relaying Binance are one vote); ties go to the lowest
   provider id, so the result never depends on the order of the quotes;
2. **outliers**: ``m0`` is the plain median of the votes; a vote further than
   ``max_deviation_pct`` from ``m0`` is rejected;
3. **majority**: the accepted upstreams must be a strict majority of the voting ones, else the
   sources disagree and there is no price (two upstreams 10 % apart: which one is right?);
4. **weights**: a vote's weight is its age factor, falling linearly from 1 (just observed) to
   ``age_floor`` at ``window_s``, times its 24 h volume when at least ``min_volume_votes``
   accepted upstreams report their own volume (aggregators' volumes are market-wide and count
   as the median of the venues'; so does a venue that reports none);
5. **price**: the weighted median of the accepted votes (the plain median when the weights are
   equal); ``stale`` when fewer than ``min_sources`` upstreams were accepted;
6. **confidence** (Pyth's aggregate): each vote also stands for ``p ± c``, its own half-width
   ``c = p * vote_confidence_pct / 100``, doubling as the vote ages to ``window_s``; of these
   three points per vote, weighted, the confidence is the larger distance from the price to the
   25th or 75th percentile, clamped into ``[0, price]``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from ..quotes import PriceQuote

__all__ = [
    "MAX_VENUES",
    "ConsensusPrice",
    "QuoteBook",
    "consensus",
    "median_of",
    "weighted_median",
    "weighted_quantile",
]

#: at most this many upstream names in ``venues`` (the heaviest votes), so a message stays small
MAX_VENUES = 32


@dataclass(frozen=True, slots=True)
class ConsensusPrice:
    symbol: str
    price: float
    sources: int  #: len(venues): upstreams that voted and were accepted
    spread_pct: float
    stale: bool
    change_24h: float | None
    updated_at: float  #: unix time of the newest accepted quote
    providers: tuple[str, ...] = ()  #: the catalog entry whose quote stood for each venue
    rejected: tuple[str, ...] = ()  #: upstreams rejected as outliers
    venues: tuple[str, ...] = ()  #: accepted upstreams, sorted, at most MAX_VENUES
    confidence: float = 0.0  #: USD half-width around price, 0 <= confidence <= price
    confidence_pct: float = 0.0  #: confidence / price * 100
    volume_weighted: bool = False


def median_of(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def weighted_quantile(points: Sequence[tuple[float, float]], q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` of the total.

    >>> weighted_quantile([(1.0, 1.0), (2.0, 1.0), (3.0, 2.0)], 0.5)
    2.0
    >>> weighted_quantile([(1.0, 1.0), (2.0, 1.0), (3.0, 2.0)], 0.75)
    3.0
    """
    ordered = sorted(points)
    total = math.fsum(w for _, w in ordered)
    target = q * total
    running = 0.0
    for value, weight in ordered:
        running += weight
        if running >= target * (1 - 1e-12):
            return value
    return ordered[-1][0]


def weighted_median(points: Sequence[tuple[float, float]]) -> float:
    """The weighted median of ``(value, weight)``: where the cumulative weight crosses half the
    total; exactly on half, the midpoint to the next value (so equal weights give the median).

    >>> weighted_median([(100.0, 1.0), (101.0, 1.0)])
    100.5
    >>> weighted_median([(100.0, 1.0), (101.0, 3.0)])
    101.0
    >>> weighted_median([(99.0, 1.0), (100.0, 1.0), (150.0, 1.0)])
    100.0
    """
    ordered = sorted(points)
    total = math.fsum(w for _, w in ordered)
    half = total / 2.0
    running = 0.0
    for i, (value, weight) in enumerate(ordered):
        running += weight
        if math.isclose(running, half, rel_tol=1e-9) and i + 1 < len(ordered):
            return (value + ordered[i + 1][0]) / 2.0
        if running > half:
            return value
    return ordered[-1][0]


def _votes(
    symbol: str, quotes: Iterable[PriceQuote], now: float, window_s: float
) -> list[PriceQuote]:
    """The freshest quote per upstream among the fresh ones (ties: the lowest provider id)."""
    best: dict[str, PriceQuote] = {}
    for q in quotes:
        if q.symbol != symbol or now - q.observed_at > window_s:
            continue
        key = q.upstream or q.provider_id
        held = best.get(key)
        if (
            held is None
            or q.observed_at > held.observed_at
            or (q.observed_at == held.observed_at and q.provider_id < held.provider_id)
        ):
            best[key] = q
    return [best[k] for k in sorted(best)]


def consensus(
    symbol: str,
    quotes: Sequence[PriceQuote],
    *,
    now: float,
    window_s: float = 120.0,
    min_sources: int = 3,
    max_deviation_pct: float = 2.0,
    aggregate_upstreams: Collection[str] = (),
    min_volume_votes: int = 3,
    age_floor: float = 0.1,
    vote_confidence_pct: float = 0.05,
    max_venues: int = MAX_VENUES,
) -> ConsensusPrice | None:
    """The consensus of ``quotes``, or None when there is none.

    ``aggregate_upstreams``: upstreams whose 24 h volume is market-wide (CoinGecko, ...), not
    their own; their votes weigh as a median venue.

    >>> q = lambda p, v, t=0.0: PriceQuote("BTC", v, p, t)
    >>> c = consensus("BTC", [q("a", 100.0), q("b", 101.0), q("c", 99.0), q("d", 150.0)], now=10)
    >>> c.price, c.sources, c.venues, c.rejected, c.stale
    (100.0, 3, ('a', 'b', 'c'), ('d',), False)
    >>> round(c.confidence, 3), round(c.confidence_pct, 3)
    (0.946, 0.946)
    >>> mirror = PriceQuote("BTC", 100.0, "a_mirror", 0.0, upstream="a")
    >>> consensus("BTC", [q("a", 100.0), mirror, q("b", 101.0)], now=10).sources  # one vote: a
    2
    >>> consensus("BTC", [q("a", 100.0), q("b", 120.0)], now=10) is None  # no majority
    True
    >>> consensus("BTC", [q("a", 100.0, t=-200)], now=10) is None  # too old
    True
    """
    fresh = _votes(symbol, quotes, now, window_s)
    if not fresh:
        return None
    middle = statistics.median(q.price for q in fresh)
    limit = middle * max_deviation_pct / 100.0
    accepted = [q for q in fresh if abs(q.price - middle) <= limit]
    if 2 * len(accepted) <= len(fresh):
        return None

    # per accepted vote (one per upstream), computed once: this runs on every streamed tick
    ups = [q.upstream or q.provider_id for q in accepted]
    ages = [min(max(now - q.observed_at, 0.0) / window_s, 1.0) for q in accepted]
    own_volume = [
        q.volume_24h
        if q.volume_24h is not None
        and math.isfinite(q.volume_24h)
        and q.volume_24h > 0
        and u not in aggregate_upstreams
        else None
        for q, u in zip(accepted, ups, strict=True)
    ]
    venue_volumes = [v for v in own_volume if v is not None]
    weighted = len(venue_volumes) >= max(min_volume_votes, 1)
    typical = statistics.median(venue_volumes) if weighted else 1.0
    # the vote's 24 h volume relative to the median venue's (1.0 when not weighted, for an
    # aggregator, and for a venue that reports none)
    weights = [
        (1.0 - (1.0 - age_floor) * age) * (v / typical if weighted and v is not None else 1.0)
        for age, v in zip(ages, own_volume, strict=True)
    ]
    price = weighted_median([(q.price, w) for q, w in zip(accepted, weights, strict=True)])

    # Pyth: every vote is three points (p - c, p, p + c); confidence from their quartiles
    points: list[tuple[float, float]] = []
    for q, w, age in zip(accepted, weights, ages, strict=True):
        c = q.price * vote_confidence_pct / 100.0 * (1.0 + age)
        points += [(q.price - c, w), (q.price, w), (q.price + c, w)]
    points.sort()  # once: the two quantiles then sort a sorted list
    low, high = weighted_quantile(points, 0.25), weighted_quantile(points, 0.75)
    confidence = min(max(price - low, high - price, 0.0), price)

    prices = [q.price for q in accepted]
    heaviest = sorted(zip(weights, ups, strict=True), key=lambda wu: (-wu[0], wu[1]))[:max_venues]
    venues = tuple(sorted(u for _, u in heaviest))
    # by identity: comparing quotes field by field made this quadratic in dataclass __eq__
    kept = {id(q) for q in accepted}
    rejected = tuple(sorted(q.upstream or q.provider_id for q in fresh if id(q) not in kept))
    return ConsensusPrice(
        symbol=symbol,
        price=price,
        sources=len(venues),
        spread_pct=round((max(prices) - min(prices)) / price * 100.0, 4),
        stale=len(accepted) < min_sources,
        change_24h=median_of(q.change_24h for q in accepted),
        updated_at=max(q.observed_at for q in accepted),
        providers=tuple(sorted(q.provider_id for q in accepted)),
        rejected=rejected,
        venues=venues,
        confidence=confidence,
        confidence_pct=confidence / price * 100.0,
        volume_weighted=weighted,
    )


class QuoteBook:
    """The latest quote of every provider for every symbol (the consensus picks per upstream)."""

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
