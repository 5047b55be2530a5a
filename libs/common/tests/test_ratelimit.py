"""The shared token bucket: tables, properties, and its docstring examples."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_common import ratelimit
from pricewire_common.ratelimit import TokenBucket


def test_docstring_examples() -> None:
    result = doctest.testmod(ratelimit, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


# -- tables ----------------------------------------------------------------------------------
# (rate, burst, calls as (now, cost), expected take() answers)
TAKE_TABLE = [
    ("starts full, grants the burst", 10, 5, [(0.0, 1)] * 6, [True] * 5 + [False]),
    ("refills at the rate", 10, 1, [(0.0, 1), (0.05, 1), (0.1, 1)], [True, False, True]),
    (
        "refills to the burst, not beyond",
        1,
        2,
        [(0.0, 2), (100.0, 2), (100.0, 1)],
        [True, True, False],
    ),
    (
        "a clock going backwards refills nothing",
        1,
        1,
        [(50.0, 1), (10.0, 1), (50.5, 1), (51.0, 1)],
        [True, False, False, True],
    ),
    (
        "a cost above the tokens is refused whole",
        1,
        3,
        [(0.0, 2), (0.0, 2), (0.0, 1)],
        [True, False, True],
    ),
    ("a fractional cost", 1, 1, [(0.0, 0.5), (0.0, 0.5), (0.0, 0.5)], [True, True, False]),
]


@pytest.mark.parametrize(
    ("rate", "burst", "calls", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in TAKE_TABLE],
)
def test_take(
    rate: float, burst: float, calls: list[tuple[float, float]], expected: list[bool]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=calls[0][0])
    assert [bucket.take(now, cost) for now, cost in calls] == expected


# (rate, burst, tokens spent at 0, wait_s(now, cost) asked as (now, cost), expected)
WAIT_TABLE = [
    ("full: no wait", 2, 3, 0, (0.0, 1), 0.0),
    ("empty: one token's time", 2, 3, 3, (0.0, 1), 0.5),
    ("part refilled", 2, 3, 3, (0.25, 1), 0.25),
    ("two tokens", 4, 3, 3, (0.0, 2), 0.5),
    ("a cost above the burst never fits", 1, 2, 0, (0.0, 3), float("inf")),
]


@pytest.mark.parametrize(
    ("rate", "burst", "spent", "ask", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in WAIT_TABLE],
)
def test_wait_s_spends_nothing(
    rate: float, burst: float, spent: int, ask: tuple[float, float], expected: float
) -> None:
    now, cost = ask
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    for _ in range(spent):
        assert bucket.take(0.0)
    before = bucket.available(now)
    assert bucket.wait_s(now, cost) == pytest.approx(expected)
    assert bucket.available(now) == before


@pytest.mark.parametrize(
    ("rate", "burst", "nows", "expected"),
    [
        pytest.param(4, 1, [0.0, 0.0, 0.0], [0.0, 0.25, 0.5], id="queued behind each other"),
        pytest.param(4, 1, [0.0, 10.0, 10.0], [0.0, 0.0, 0.25], id="an idle spell pays the debt"),
        pytest.param(1, 2, [0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 1.0, 1.5], id="a burst, then paced"),
    ],
)
def test_reserve(rate: float, burst: float, nows: list[float], expected: list[float]) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    assert [bucket.reserve(now) for now in nows] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("rate", "burst"), [(0, 1), (-1, 1), (1, 0), (1, 0.5), (float("nan"), 1), (1, float("nan"))]
)
def test_impossible_parameters_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="token bucket needs a positive rate"):
        TokenBucket(rate=rate, burst=burst)


# -- properties (take refuses, reserve queues: both hold to the same bound) -------------------
def _act(bucket: TokenBucket, mode: str, now: float) -> float | None:
    """When the caller may act on one token asked for at ``now`` (None: refused)."""
    if mode == "take":
        return now if bucket.take(now) else None
    return now + bucket.reserve(now)


@pytest.mark.parametrize("mode", ["take", "reserve"])
@given(
    rate=st.floats(min_value=0.01, max_value=100),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=200),
)
def test_by_any_time_t_at_most_burst_plus_rate_times_t_tokens_are_acted_on(
    mode: str, rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    asked = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    acts = sorted(at for now in asked if (at := _act(bucket, mode, now)) is not None)
    for count, at in enumerate(acts, 1):  # the count-th token needs count tokens by then
        assert count <= burst + rate * at + 1e-6


@pytest.mark.parametrize("mode", ["take", "reserve"])
@given(rate=st.floats(min_value=0.1, max_value=1000), n=st.integers(min_value=1, max_value=500))
def test_asking_at_exactly_the_rate_acts_at_once(mode: str, rate: float, n: int) -> None:
    bucket = TokenBucket(rate=rate, burst=1, now=0.0)
    assert all(_act(bucket, mode, i / rate) == i / rate for i in range(n))


@given(rate=st.floats(min_value=0.01, max_value=50), burst=st.integers(min_value=1, max_value=5))
def test_wait_s_is_exactly_when_a_token_is_back(rate: float, burst: int) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    assert all(bucket.take(0.0) for _ in range(burst))
    assert not bucket.take(0.0)
    wait = bucket.wait_s(0.0)
    assert wait == pytest.approx(1 / rate)
    assert bucket.take(wait * (1 + 1e-9))
