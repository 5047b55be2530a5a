"""Consensus price, price gate, health window: tables and properties."""

from __future__ import annotations

import math
import statistics
from typing import Any

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
    # honest quotes within 2 % of each other (99..101 could put one just past 2 % of a 99 median)
    st.lists(st.floats(min_value=99.5, max_value=101.0), min_size=3, max_size=20),
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


# -- one vote per upstream, weights, confidence ---------------------------------------------


def v(
    upstream: str,
    price: float,
    at: float = 0.0,
    *,
    provider: str | None = None,
    volume: float | None = None,
) -> PriceQuote:
    """A quote of ``upstream`` (through the catalog entry ``provider``, default its name)."""
    return PriceQuote("BTC", price, provider or upstream, at, volume_24h=volume, upstream=upstream)


@pytest.mark.parametrize(
    ("quotes", "now", "price", "venues", "stale"),
    [
        # three Binance entries are one vote: Binance alone is stale whatever its mirrors say
        (
            [v("binance", 100.0, provider=f"binance_{i}") for i in range(3)],
            0.0,
            100.0,
            ["binance"],
            True,
        ),
        # the freshest quote of an upstream is its vote; an older mirror's does not count
        (
            [
                v("binance", 100.0, at=5.0, provider="b1"),
                v("binance", 90.0, at=1.0, provider="b2"),
                v("kraken", 100.2),
                v("okx", 99.8),
            ],
            10.0,
            100.0,
            ["binance", "kraken", "okx"],
            False,
        ),
        # before: 3 Binance entries at 101 outvoted 2 others at 100; now 1 vote against 2
        (
            [v("binance", 101.0, provider=f"b{i}") for i in range(3)]
            + [v("kraken", 100.0), v("okx", 100.0)],
            0.0,
            100.0,
            ["binance", "kraken", "okx"],
            False,
        ),
        # a split of upstreams, not of entries: no majority
        ([v("a", 100.0), v("a", 100.0, provider="a2"), v("b", 120.0)], 0.0, None, None, None),
    ],
)
def test_one_vote_per_upstream_table(
    quotes: list[PriceQuote],
    now: float,
    price: float | None,
    venues: list[str] | None,
    stale: bool | None,
) -> None:
    result = consensus("BTC", quotes, now=now, min_sources=2)
    if price is None:
        assert result is None
        return
    assert result is not None
    assert result.price == pytest.approx(price)
    assert (list(result.venues), result.sources, result.stale) == (venues, len(venues or []), stale)


@pytest.mark.parametrize(
    ("quotes", "now", "price", "weighted"),
    [
        # three venues report volume: the median is volume-weighted (kraken's 8 of 10 wins)
        (
            [v("a", 100.0, volume=1.0), v("b", 100.5, volume=1.0), v("kraken", 100.2, volume=8.0)],
            0.0,
            100.2,
            True,
        ),
        # only two report volume: a plain median
        (
            [v("a", 100.0, volume=1.0), v("b", 100.5), v("kraken", 100.2, volume=8.0)],
            0.0,
            100.2,
            False,
        ),
        (
            [
                v("a", 100.0, volume=1.0),
                v("b", 100.5, volume=1.0),
                v("c", 100.4, volume=8.0),
                v("d", 100.1),
            ],
            0.0,
            100.4,
            True,
        ),
        # no volumes, two quotes aged to the window's edge: they weigh 0.1 each, the fresh
        # two decide (the plain median would be 100.3)
        (
            [
                v("a", 100.0, at=0.0),
                v("b", 100.2, at=0.0),
                v("c", 100.4, at=120.0),
                v("d", 100.6, at=120.0),
            ],
            120.0,
            100.4,
            False,
        ),
        # an aggregator's market-wide volume does not make it heavy: it counts as a median venue
        (
            [
                v("agg", 100.9, volume=1e12),
                v("a", 100.0, volume=1.0),
                v("b", 100.1, volume=1.0),
                v("c", 100.2, volume=1.0),
            ],
            0.0,
            100.15,  # 4 equal votes: not 100.9, where the aggregator's volume would put it
            True,
        ),
    ],
)
def test_weighted_median_table(
    quotes: list[PriceQuote], now: float, price: float, weighted: bool
) -> None:
    result = consensus("BTC", quotes, now=now, aggregate_upstreams={"agg"})
    assert result is not None
    assert result.price == pytest.approx(price)
    assert result.volume_weighted is weighted


def test_confidence_follows_the_spread_of_the_votes_and_their_age() -> None:
    tight = consensus(
        "BTC",
        [v(u, 100.0 + d) for u, d in zip("abcde", (0, 0.1, -0.1, 0.05, -0.05), strict=True)],
        now=0.0,
    )
    wide = consensus(
        "BTC",
        [v(u, 100.0 + d) for u, d in zip("abcde", (0, 1.5, -1.5, 1.2, -1.2), strict=True)],
        now=0.0,
    )
    assert tight is not None and wide is not None
    assert 0 < tight.confidence < wide.confidence
    # 15 points (p - c, p, p + c); the 75th percentile is 101.2 + c: confidence 1.2506
    assert wide.confidence == pytest.approx(101.2 * 1.0005 - 100.0)
    assert wide.confidence_pct == pytest.approx(wide.confidence / wide.price * 100)
    alone_fresh = consensus("BTC", [v("a", 100.0, at=0.0)], now=0.0)
    alone_old = consensus("BTC", [v("a", 100.0, at=0.0)], now=120.0)
    assert alone_fresh is not None and alone_old is not None
    # one vote: its own half-width, 0.05 %, doubling as it ages to the window's edge
    assert alone_fresh.confidence == pytest.approx(0.05)
    assert alone_old.confidence == pytest.approx(0.10)


def test_venues_are_bounded_to_the_heaviest() -> None:
    quotes = [v(f"u{i:02d}", 100.0 + i * 0.01, volume=float(i + 1)) for i in range(40)]
    result = consensus("BTC", quotes, now=0.0, max_venues=32)
    assert result is not None
    assert result.sources == len(result.venues) == 32
    assert list(result.venues) == sorted(result.venues)
    assert "u00" not in result.venues and "u39" in result.venues  # the lightest left out
    assert not result.stale


# -- properties ---------------------------------------------------------------------------

WINDOW = 120.0
upstream_names = st.sampled_from(["binance", "kraken", "coinbase", "okx", "coingecko", "bybit"])
vote = st.tuples(
    upstream_names,
    st.integers(min_value=0, max_value=3),  # which entry of the upstream
    st.floats(min_value=1e-6, max_value=1e7),  # price
    st.floats(min_value=0.0, max_value=200.0),  # age
    st.none() | st.floats(min_value=1.0, max_value=1e11),  # volume
)
votes = st.lists(vote, min_size=1, max_size=25)


def build(raw: list[tuple[str, int, float, float, float | None]]) -> list[PriceQuote]:
    seen: set[str] = set()
    quotes = []
    for upstream, entry, price, age, volume in raw:
        pid = f"{upstream}_{entry}"
        if pid in seen:  # the book holds one quote per catalog entry
            continue
        seen.add(pid)
        quotes.append(v(upstream, price, at=WINDOW - age, provider=pid, volume=volume))
    return quotes


def run(quotes: list[PriceQuote], **kw: Any) -> ConsensusPrice | None:
    return consensus(
        "BTC", quotes, now=WINDOW, window_s=WINDOW, aggregate_upstreams={"coingecko"}, **kw
    )


@given(votes)
def test_the_price_lies_within_the_fresh_votes(
    raw: list[tuple[str, int, float, float, float | None]],
) -> None:
    quotes = build(raw)
    result = run(quotes)
    if result is None:
        return
    fresh = [q.price for q in quotes if WINDOW - q.observed_at <= WINDOW]
    assert min(fresh) <= result.price <= max(fresh)
    assert result.sources == len(result.venues) == len(set(result.venues))
    assert 2 * result.sources > len(
        {q.upstream for q in quotes if WINDOW - q.observed_at <= WINDOW}
    )


@given(votes)
def test_confidence_is_finite_and_between_zero_and_the_price(
    raw: list[tuple[str, int, float, float, float | None]],
) -> None:
    result = run(build(raw))
    if result is None:
        return
    assert math.isfinite(result.confidence) and math.isfinite(result.confidence_pct)
    assert 0.0 <= result.confidence <= result.price
    assert 0.0 <= result.confidence_pct <= 100.0


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=1e-3, max_value=1e6), st.floats(min_value=0.0, max_value=200.0)
        ),
        min_size=1,
        max_size=10,
    )
)
def test_one_upstream_alone_is_never_fresh_with_a_minimum_of_two(
    entries: list[tuple[float, float]],
) -> None:
    quotes = [
        v("binance", p, at=WINDOW - age, provider=f"b{i}") for i, (p, age) in enumerate(entries)
    ]
    result = run(quotes, min_sources=2)
    assert result is None or (result.stale and result.venues == ("binance",))


@given(votes, st.data())
def test_adding_a_mirror_never_changes_the_price(
    raw: list[tuple[str, int, float, float, float | None]], data: st.DataObject
) -> None:
    quotes = build(raw)
    before = run(quotes)
    original = data.draw(st.sampled_from(quotes))
    identical = data.draw(st.booleans())
    if identical:  # another entry relaying the very same answer
        mirror = PriceQuote(
            "BTC",
            original.price,
            "zz_mirror",
            original.observed_at,
            volume_24h=original.volume_24h,
            upstream=original.upstream,
        )
    else:  # another entry, polled earlier: whatever it says, the fresher quote is the vote
        price = data.draw(st.floats(min_value=1e-6, max_value=1e7))
        lag = data.draw(st.floats(min_value=1e-3, max_value=300.0))
        mirror = v(original.upstream, price, at=original.observed_at - lag, provider="zz_mirror")
    after = run([*quotes, mirror])
    if before is None:
        assert after is None
        return
    assert after is not None
    assert (after.price, after.venues, after.sources, after.stale) == (
        before.price,
        before.venues,
        before.sources,
        before.stale,
    )
    assert after.confidence == before.confidence


def test_the_worked_example_of_docs_consensus_md() -> None:
    now = 1000.0
    quotes = [
        v("binance", 43240.0, now - 10, provider="binance_public", volume=2.5e9),
        v("binance", 43200.0, now - 40, provider="binance_vision", volume=2.5e9),
        v("coinbase", 43180.0, now - 20, provider="coinbase_exchange", volume=1.0e9),
        v("kraken", 43260.0, now - 60, volume=0.4e9),
        v("okx", 43150.0, now - 5, volume=0.8e9),
        v("coingecko", 43230.0, now - 30, volume=21e9),
        v("mexc", 44600.0, now - 15, volume=0.5e9),
    ]
    result = consensus("BTC", quotes, now=now, aggregate_upstreams={"coingecko"})
    assert result is not None
    assert result.venues == ("binance", "coinbase", "coingecko", "kraken", "okx")
    assert (result.price, result.sources, result.stale, result.rejected) == (
        43240.0,
        5,
        False,
        ("mexc",),
    )
    assert result.volume_weighted
    assert result.confidence == pytest.approx(60.0)
    assert round(result.confidence_pct, 4) == 0.1388
    assert result.spread_pct == 0.2544
