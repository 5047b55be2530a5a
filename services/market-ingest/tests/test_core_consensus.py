"""Consensus price, price gate, health window: tables and properties."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_ingest.core.consensus import ConsensusPrice, QuoteBook, consensus
from pricewire_ingest.core.gate import PriceGate
from pricewire_ingest.core.health import HealthWindow, status_for
from pricewire_ingest.quotes import PriceQuote


def q(provider: str, price: float, at: float = 0.0, change: float | None = None) -> PriceQuote:
    return PriceQuote("BTC", price, provider, at, change_24h=change)


@pytest.mark.parametrize(
    ("prices", "expected_price", "sources", "rejected", "stale"),
    [
        ([100.0], 100.0, 1, (), True),  # one source: a price, flagged stale
        ([100.0, 100.5], 100.25, 2, (), True),
        ([100.0, 101.0, 99.0], 100.0, 3, (), False),
        ([100.0, 101.0, 99.0, 150.0], 100.0, 3, ("p3",), False),  # outlier rejected
        ([100.0, 101.0, 99.0, 0.5, 1e9], 100.0, 3, ("p3", "p4"), False),
        ([100.0, 100.1, 100.2, 100.3, 100.4, 500.0, 501.0], 100.2, 5, ("p5", "p6"), False),
    ],
)
def test_consensus_table(
    prices: list[float], expected_price: float, sources: int, rejected: tuple[str, ...], stale: bool
) -> None:
    result = consensus("BTC", [q(f"p{i}", p) for i, p in enumerate(prices)], now=10.0)
    assert result is not None
    assert result.price == pytest.approx(expected_price)
    assert (result.sources, result.rejected, result.stale) == (sources, rejected, stale)


@pytest.mark.parametrize(
    "prices",
    [
        [100.0, 120.0],  # two disagreeing sources: no majority
        [100.0, 100.5, 150.0, 151.0],  # a split market
        [],
    ],
)
def test_no_consensus_without_a_majority(prices: list[float]) -> None:
    assert consensus("BTC", [q(f"p{i}", p) for i, p in enumerate(prices)], now=0.0) is None


def test_only_fresh_quotes_count() -> None:
    quotes = [q("old", 50.0, at=0.0), q("a", 100.0, at=100.0), q("b", 101.0, at=110.0)]
    result = consensus("BTC", quotes, now=125.0, window_s=120.0)
    assert result is not None
    assert (result.sources, result.updated_at) == (2, 110.0)
    assert consensus("BTC", quotes, now=500.0, window_s=120.0) is None


def test_change_and_spread_come_from_the_accepted_quotes() -> None:
    quotes = [
        q("a", 100.0, change=2.0),
        q("b", 102.0, change=3.0),
        q("c", 101.0),
        q("d", 300.0, change=90.0),
    ]
    result = consensus("BTC", quotes, now=0.0)
    assert result is not None
    assert result.change_24h == 2.5
    assert result.spread_pct == pytest.approx(2 / 101 * 100, rel=1e-3)


prices_strategy = st.lists(st.floats(min_value=1e-6, max_value=1e7), min_size=1, max_size=30)


@given(prices_strategy)
def test_consensus_price_lies_within_the_accepted_quotes(prices: list[float]) -> None:
    result = consensus("BTC", [q(f"p{i}", p) for i, p in enumerate(prices)], now=0.0)
    if result is None:
        return
    accepted = [p for i, p in enumerate(prices) if f"p{i}" in result.providers]
    assert min(accepted) <= result.price <= max(accepted)
    assert result.price > 0
    assert 2 * result.sources > len(prices)


@given(prices_strategy, st.randoms())
def test_consensus_ignores_the_order_of_quotes(prices: list[float], rng: object) -> None:
    quotes = [q(f"p{i}", p) for i, p in enumerate(prices)]
    shuffled = list(quotes)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert consensus("BTC", quotes, now=0.0) == consensus("BTC", shuffled, now=0.0)


@given(
    st.lists(st.floats(min_value=99.0, max_value=101.0), min_size=3, max_size=20),
    st.floats(min_value=2.0, max_value=1e6),
)
def test_a_minority_of_wild_quotes_cannot_move_the_price(
    honest: list[float], factor: float
) -> None:
    wild = [h * factor for h in honest[: (len(honest) - 1) // 2]]
    quotes = [q(f"h{i}", p) for i, p in enumerate(honest)] + [
        q(f"w{i}", p) for i, p in enumerate(wild)
    ]
    result = consensus("BTC", quotes, now=0.0)
    assert result is not None
    assert 99.0 <= result.price <= 101.0
    assert all(r.startswith("w") for r in result.rejected)


@given(
    st.floats(min_value=1.0, max_value=1e5),
    st.lists(st.floats(min_value=-0.009, max_value=0.009), min_size=3, max_size=15),
)
def test_agreeing_quotes_give_their_median(base: float, offsets: list[float]) -> None:
    prices = [base * (1 + o) for o in offsets]  # all within 2 % of each other's median
    middle = statistics.median(prices)
    result = consensus("BTC", [q(f"p{i}", p) for i, p in enumerate(prices)], now=0.0)
    assert result is not None
    assert result.price == pytest.approx(middle)


def test_quote_book_keeps_the_latest_quote_per_provider_and_prunes() -> None:
    book = QuoteBook()
    book.add([q("a", 1.0, at=0.0), q("a", 2.0, at=5.0), q("b", 3.0, at=1.0)])
    assert sorted(x.price for x in book.quotes("BTC")) == [2.0, 3.0]
    assert [x.provider_id for x in book.fresh("BTC", now=100.0, window_s=96.0)] == ["a"]
    book.prune(now=100.0, max_age_s=96.0)
    assert [x.provider_id for x in book.quotes("BTC")] == ["a"]


def test_price_gate_publishes_changes_at_most_once_per_interval_and_refreshes() -> None:
    gate = PriceGate(min_interval_s=1.0, refresh_s=30.0)
    p = ConsensusPrice("BTC", 100.0, 3, 0.1, False, None, 0.0)
    assert gate.admit(p, now=0.0)
    assert not gate.admit(ConsensusPrice("BTC", 101.0, 3, 0.1, False, None, 0.0), now=0.5)
    assert gate.admit(ConsensusPrice("BTC", 101.0, 3, 0.1, False, None, 0.0), now=1.0)
    assert not gate.admit(ConsensusPrice("BTC", 101.0, 3, 0.1, False, None, 0.0), now=5.0)
    assert gate.admit(ConsensusPrice("BTC", 101.0, 2, 0.1, True, None, 0.0), now=6.0)  # stale now
    assert gate.admit(ConsensusPrice("BTC", 101.0, 2, 0.1, True, None, 0.0), now=36.0)  # refresh


def test_health_window_success_rate_and_status() -> None:
    w = HealthWindow(window_s=100.0)
    assert w.success_rate(0.0) == 0.0
    for t, ok in ((0.0, False), (10.0, True), (20.0, True), (30.0, True)):
        w.record(t, ok)
    assert (w.success_rate(30.0), w.polls(30.0)) == (75.0, 4)
    assert (w.success_rate(105.0), w.polls(105.0)) == (100.0, 3)
    assert [
        status_for(o) for o in ("ok", "rate_limited", "timeout", "bad_response", "disabled")
    ] == [
        "online",
        "rate_limited",
        "offline",
        "offline",
        "disabled",
    ]
