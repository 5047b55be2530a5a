"""Full-jitter backoff, circuit breaker, scheduling rules: tables and properties."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pricewire_ingest.core.breaker import CircuitBreaker
from pricewire_ingest.core.limits import full_jitter
from pricewire_ingest.core.schedule import PollTiming, Scheduler, next_poll_at


# -- full jitter (the token bucket is pricewire_common.ratelimit, tested in libs/common) --------
@given(attempt=st.integers(min_value=0, max_value=100), seed=st.integers())
def test_full_jitter_stays_within_its_exponential_ceiling(attempt: int, seed: int) -> None:
    rng = random.Random(seed)
    value = full_jitter(attempt, base_s=2.0, cap_s=300.0, rng=rng)
    assert 0.0 <= value <= min(300.0, 2.0 * 2**attempt)


def test_full_jitter_spreads_over_the_whole_range() -> None:
    rng = random.Random(7)
    values = [full_jitter(3, base_s=1.0, cap_s=100.0, rng=rng) for _ in range(2000)]
    assert min(values) < 0.5 and max(values) > 7.5  # uniform over [0, 8]


# -- circuit breaker ----------------------------------------------------------------------
def _breaker(**kw: float) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=int(kw.get("threshold", 3)),
        open_base_s=kw.get("base", 10.0),
        open_max_s=kw.get("cap", 100.0),
        rng=random.Random(1),
    )


def test_breaker_walks_closed_open_half_open_closed() -> None:
    b = _breaker()
    for t in range(2):
        b.record_failure(float(t))
        assert (b.state, b.allow(float(t))) == ("closed", True)
    b.record_failure(2.0)
    assert b.state == "open"
    assert 12.0 <= b.open_until <= 22.0  # base + jitter on top
    assert not b.allow(b.open_until - 0.01)
    assert b.allow(b.open_until)  # the probe
    assert b.state == "half_open"
    assert not b.allow(b.open_until + 1)  # only one probe at a time
    b.record_success()
    assert (b.state, b.consecutive_failures, b.opened) == ("closed", 0, 0)


def test_failed_probe_reopens_for_longer_up_to_the_cap() -> None:
    b = _breaker(threshold=1, base=10.0, cap=100.0)
    b.record_failure(0.0)
    durations = []
    now = 0.0
    for _ in range(12):
        now = b.open_until
        assert b.allow(now)
        b.record_failure(now)
        durations.append(b.open_until - now)
    assert all(10.0 <= d <= 100.0 for d in durations)
    assert max(durations[6:]) > max(durations[:1])


def test_rate_limited_probe_closes_the_breaker_and_is_no_failure() -> None:
    b = _breaker(threshold=2)
    b.record_failure(0.0)
    b.record_rate_limited()
    b.record_failure(1.0)
    assert b.state == "closed"  # the 429 reset the failure streak
    b.record_failure(2.0)
    assert b.state == "open"
    assert b.allow(b.open_until)
    b.record_rate_limited()
    assert b.state == "closed"


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["ok", "fail", "429", "tick"]), max_size=60))
def test_breaker_state_is_always_consistent(events: list[str]) -> None:
    b = _breaker(threshold=3)
    now = 0.0
    for event in events:
        now += 1.0
        if event == "tick":  # time passes up to the probe
            now = max(now, b.open_until)
            continue
        if not b.allow(now):
            assert b.state == "open" and now < b.open_until
            continue
        if event == "ok":
            b.record_success()
        elif event == "fail":
            b.record_failure(now)
        elif event == "429":
            b.record_rate_limited()
        assert b.state in ("closed", "open", "half_open")
        if b.state == "closed":
            assert b.consecutive_failures < 3


# -- scheduling -------------------------------------------------------------------------------
TIMING = PollTiming(jitter_ratio=0.1, retry_base_s=2.0, min_interval_s=0.5)


@given(seed=st.integers(), interval=st.floats(min_value=1, max_value=900))
def test_success_polls_again_one_jittered_interval_later(seed: int, interval: float) -> None:
    due = next_poll_at(100.0, interval, "ok", timing=TIMING, rng=random.Random(seed))
    assert 100.0 + max(0.5, interval * 0.9) - 1e-9 <= due <= 100.0 + max(0.5, interval * 1.1) + 1e-9


@given(
    seed=st.integers(),
    interval=st.floats(min_value=1, max_value=600),
    retry_after=st.floats(min_value=0, max_value=3600),
)
def test_rate_limited_never_polls_before_retry_after_nor_faster_than_the_interval(
    seed: int, interval: float, retry_after: float
) -> None:
    due = next_poll_at(
        0.0,
        interval,
        "rate_limited",
        timing=TIMING,
        rng=random.Random(seed),
        retry_after_s=retry_after,
    )
    assert due >= retry_after
    assert due >= interval * 0.9 - 1e-9


@given(seed=st.integers(), streak=st.integers(min_value=1, max_value=10))
def test_rate_limited_without_retry_after_backs_off(seed: int, streak: int) -> None:
    due = next_poll_at(
        0.0,
        10.0,
        "rate_limited",
        timing=TIMING,
        rng=random.Random(seed),
        rate_limited_streak=streak,
    )
    assert 9.0 <= due <= 11.0 + 160.0


@given(seed=st.integers(), failures=st.integers(min_value=1, max_value=20))
def test_failure_retries_sooner_than_the_interval(seed: int, failures: int) -> None:
    due = next_poll_at(
        0.0, 60.0, "timeout", timing=TIMING, rng=random.Random(seed), failures=failures
    )
    assert 0.5 <= due <= 66.0


def test_failure_with_an_open_breaker_waits_for_the_probe() -> None:
    due = next_poll_at(
        0.0,
        10.0,
        "http_error",
        timing=TIMING,
        rng=random.Random(1),
        failures=3,
        breaker_open_until=45.0,
    )
    assert due == 45.0


def test_scheduler_returns_due_providers_earliest_first_and_reschedules() -> None:
    s = Scheduler()
    s.schedule("c", 3.0)
    s.schedule("a", 1.0)
    s.schedule("b", 2.0)
    s.schedule("c", 0.5)  # moved earlier: the old entry is ignored
    assert s.next_due() == 0.5
    assert s.pop_due(2.0) == ["c", "a", "b"]
    assert s.pop_due(10.0) == []
    assert len(s) == 0 and s.due_at("a") is None
