"""When a consensus price is worth publishing: when it changed (price, venues, stale), at most
once per ``min_interval_s`` per symbol, and at least every ``refresh_s`` so a late subscriber of
core NATS sees it."""

from __future__ import annotations

from dataclasses import dataclass

from .consensus import ConsensusPrice

__all__ = ["PriceGate"]


@dataclass(slots=True)
class _Last:
    price: float
    sources: int
    venues: tuple[str, ...]
    stale: bool
    at: float


class PriceGate:
    """
    >>> gate = PriceGate(min_interval_s=1.0, refresh_s=30.0)
    >>> c = ConsensusPrice("BTC", 100.0, 3, 0.1, False, None, 0.0)
    >>> gate.admit(c, now=0.0), gate.admit(c, now=0.5), gate.admit(c, now=10.0), gate.admit(c, now=31.0)
    (True, False, False, True)
    """

    def __init__(
        self, *, min_interval_s: float, refresh_s: float, epsilon_ratio: float = 1e-9
    ) -> None:
        self.min_interval_s = min_interval_s
        self.refresh_s = refresh_s
        self.epsilon_ratio = epsilon_ratio
        self._last: dict[str, _Last] = {}

    def admit(self, price: ConsensusPrice, *, now: float) -> bool:
        last = self._last.get(price.symbol)
        if last is not None:
            if now - last.at < self.min_interval_s:
                return False
            changed = (
                abs(price.price - last.price) > last.price * self.epsilon_ratio
                or price.sources != last.sources
                or price.venues != last.venues
                or price.stale != last.stale
            )
            if not changed and now - last.at < self.refresh_s:
                return False
        self._last[price.symbol] = _Last(price.price, price.sources, price.venues, price.stale, now)
        return True
