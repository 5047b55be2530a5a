"""The simulated market: one random walk per coin that every simulated provider reads (so they
agree, give or take a small per-provider offset), and a news desk writing fresh stories.

Pure: time is passed in, randomness comes from a seeded ``random.Random``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..catalog import Asset

__all__ = ["MarketWorld", "NewsDesk", "Story"]

# (price in USD, circulating supply, 24 h volume in USD) at the start of a simulation
_START: dict[str, tuple[float, float, float]] = {
    "BTC": (43250.0, 19_600_000, 21e9),
    "ETH": (2280.0, 120_100_000, 9.5e9),
    "BNB": (312.0, 153_800_000, 0.9e9),
    "SOL": (98.0, 432_000_000, 2.1e9),
    "XRP": (0.62, 54_000_000_000, 1.3e9),
    "ADA": (0.52, 35_200_000_000, 0.45e9),
    "DOGE": (0.085, 142_500_000_000, 0.6e9),
    "TRX": (0.11, 88_200_000_000, 0.3e9),
    "DOT": (7.2, 1_300_000_000, 0.2e9),
    "LTC": (70.0, 74_000_000, 0.4e9),
    "AVAX": (36.0, 366_000_000, 0.7e9),
    "LINK": (15.0, 567_000_000, 0.5e9),
}


@dataclass(slots=True)
class _Coin:
    symbol: str
    price: float
    open_24h: float
    supply: float
    volume: float


class MarketWorld:
    """
    >>> from pricewire_ingest.catalog import load_catalog
    >>> world = MarketWorld(load_catalog().assets, seed=1, start=0.0)
    >>> 40000 < world.price("BTC", 60.0) < 47000
    True
    >>> world.provider_price("BTC", "kraken", 60.0) != world.provider_price("BTC", "okx", 60.0)
    True
    """

    def __init__(
        self,
        assets: Sequence[Asset],
        *,
        seed: int | None = None,
        start: float,
        volatility_per_s: float = 3e-4,
        jump_interval_s: float = 600.0,
        jump_pct: float = 4.0,
        provider_spread_pct: float = 0.1,
    ) -> None:
        self.rng = random.Random(seed)
        self.volatility_per_s = volatility_per_s
        self.jump_interval_s = jump_interval_s
        self.jump_pct = jump_pct
        self.provider_spread_pct = provider_spread_pct
        self.coins: dict[str, _Coin] = {}
        for asset in assets:
            price, supply, volume = _START.get(asset.symbol, (1.0, 1e9, 1e8))
            # a 24 h change somewhere in [-5 %, +5 %] at the start
            open_24h = price / (1 + self.rng.uniform(-0.05, 0.05))
            self.coins[asset.symbol] = _Coin(asset.symbol, price, open_24h, supply, volume)
        self._time = start
        self._next_jump = (
            start + self.rng.expovariate(1 / jump_interval_s) if jump_interval_s else math.inf
        )

    def advance(self, now: float) -> None:
        """Move every coin's random walk forward to ``now`` in one-second steps."""
        steps = int(now - self._time)
        if steps <= 0:
            return
        # after a long pause one combined step keeps it cheap (the walk's variance adds up)
        batch = [1.0] * steps if steps <= 120 else [float(steps)]
        for dt in batch:
            for coin in self.coins.values():
                sigma = self.volatility_per_s * math.sqrt(dt)
                coin.price *= math.exp(self.rng.gauss(0.0, sigma) - sigma * sigma / 2)
                # the 24 h open drifts toward the price, as a rolling window would
                coin.open_24h += (coin.price - coin.open_24h) * min(1.0, dt / 86400)
        self._time += steps
        while self._time >= self._next_jump:
            coin = self.rng.choice(list(self.coins.values()))
            coin.price *= 1 + self.rng.choice((-1, 1)) * self.jump_pct / 100
            self._next_jump += self.rng.expovariate(1 / self.jump_interval_s)

    def price(self, symbol: str, now: float) -> float:
        self.advance(now)
        return self.coins[symbol].price

    def provider_price(self, symbol: str, provider_id: str, now: float) -> float:
        """The true price seen by one provider: a small, stable, provider-specific offset."""
        return self.price(symbol, now) * (
            1 + _offset(provider_id, symbol) * self.provider_spread_pct / 100
        )

    def change_24h(self, symbol: str, now: float) -> float:
        coin = self.coins[symbol]
        return (self.price(symbol, now) / coin.open_24h - 1) * 100

    def open_24h(self, symbol: str) -> float:
        return self.coins[symbol].open_24h

    def market_cap(self, symbol: str, now: float) -> float:
        return self.price(symbol, now) * self.coins[symbol].supply

    def volume(self, symbol: str) -> float:
        return self.coins[symbol].volume

    def supply(self, symbol: str) -> float:
        return self.coins[symbol].supply

    def truth(self, now: float) -> dict[str, float]:
        self.advance(now)
        return {s: c.price for s, c in self.coins.items()}


def _offset(provider_id: str, symbol: str) -> float:
    """A stable number in [-1, 1] per (provider, symbol)."""
    digest = hashlib.blake2b(f"{provider_id}:{symbol}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 0xFFFFFFFF * 2 - 1


@dataclass(frozen=True, slots=True)
class Story:
    number: int
    title: str
    slug: str
    summary: str
    published_at: float
    feeds: tuple[str, ...]


@dataclass
class NewsDesk:
    """Writes a story every ``interval_s`` for one feed, sometimes two (the same URL with
    different tracking parameters: the ingest must publish it once)."""

    feeds: Sequence[str]
    names: dict[str, str]  #: symbol -> name
    interval_s: float = 45.0
    syndication: float = 0.3
    keep: int = 20
    seed: int | None = None
    start: float = 0.0
    _rng: random.Random = field(init=False)
    _stories: dict[str, deque[Story]] = field(init=False)
    _time: float = field(init=False)
    _count: int = field(init=False, default=0)

    _VERBS = (("rises", "climbs", "jumps"), ("falls", "slips", "drops"))
    _REASONS = (
        "ETF inflows continue",
        "traders eye the Fed decision",
        "on-chain activity hits a monthly high",
        "a large exchange lists new pairs",
        "developers ship a network upgrade",
        "funding rates turn positive",
        "miners move coins to exchanges",
        "options expiry nears",
    )

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._stories = {feed: deque(maxlen=self.keep) for feed in self.feeds}
        # a few older stories so that the very first poll finds news
        self._time = self.start
        for age in range(len(self.feeds), 0, -1):
            self._write(self.start - age * 600.0)

    def _write(self, when: float) -> None:
        if not self.feeds:
            return
        self._count += 1
        symbol = self._rng.choice(list(self.names))
        up = self._rng.random() < 0.5
        verb = self._rng.choice(self._VERBS[0 if up else 1])
        pct = self._rng.uniform(0.5, 6.0)
        reason = self._rng.choice(self._REASONS)
        title = f"{self.names[symbol]} {verb} {pct:.1f}% as {reason}"
        slug = "-".join(title.lower().replace("%", "pct").replace(".", "-").split())[:80]
        feeds = [self._rng.choice(list(self.feeds))]
        if len(self.feeds) > 1 and self._rng.random() < self.syndication:
            feeds.append(self._rng.choice([f for f in self.feeds if f != feeds[0]]))
        story = Story(
            self._count,
            title,
            slug,
            f"{self.names[symbol]} moved {pct:.1f}% while {reason}. Analysts expect volatility.",
            when,
            tuple(feeds),
        )
        for feed in feeds:
            self._stories[feed].append(story)

    def stories(self, feed: str, now: float) -> list[Story]:
        """The feed's stories, newest first, after writing those due by ``now``."""
        while self._time + self.interval_s <= now:
            self._time += self.interval_s
            self._write(self._time)
        return list(reversed(self._stories.get(feed, ())))
