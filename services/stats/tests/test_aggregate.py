from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_contracts import ClientType, EdgeReport, Group
from pricewire_stats.aggregate import AggregateState, Aggregator, Counters


def report(
    edge: str = "A",
    boot: str = "b1",
    seq: int = 1,
    *,
    active: int = 0,
    total: int = 0,
    sent: int = 0,
    received: int = 0,
    interval: float = 5.0,
    types: dict[ClientType, int] | None = None,
    groups: dict[Group, int] | None = None,
) -> EdgeReport:
    return EdgeReport(
        edge_id=edge,
        boot_id=boot,
        sequence=seq,
        report_interval_s=interval,
        sent_at="2024-01-15T10:00:00",
        active_connections=active,
        total_sessions=total,
        messages_sent=sent,
        messages_received=received,
        client_types=types or {},
        subscriptions=groups or {},
    )


def test_two_edges_are_summed_gauges_and_counters_alike() -> None:
    agg = Aggregator()
    agg.apply(
        report(
            "A",
            active=2,
            total=5,
            sent=100,
            received=10,
            types={ClientType.BROWSER: 2},
            groups={Group.MARKET: 1},
        ),
        now=0,
    )
    agg.apply(
        report(
            "B",
            active=1,
            total=3,
            sent=50,
            received=5,
            types={ClientType.BROWSER: 0, ClientType.API: 1},
            groups={Group.MARKET: 1, Group.ALL: 1},
        ),
        now=0,
    )
    stats = agg.snapshot(now=1)
    assert stats.model_dump(mode="json") == {
        "active_connections": 3,
        "total_sessions": 8,
        "messages_sent": 150,
        "messages_received": 15,
        "client_types": {"browser": 2, "api": 1},
        "subscriptions": {"market": 2, "all": 1},
    }


def test_an_edge_restart_adds_to_the_totals_instead_of_resetting_them() -> None:
    agg = Aggregator()
    agg.apply(report("A", "b1", 7, active=4, total=10, sent=100, received=20), now=0)
    agg.apply(report("A", "b2", 0, active=1, total=1, sent=3, received=1), now=1)
    stats = agg.snapshot(now=2)
    assert stats.active_connections == 1  # the old boot's clients are gone
    assert (stats.total_sessions, stats.messages_sent, stats.messages_received) == (11, 103, 21)


def test_a_late_report_of_the_old_boot_does_not_bring_its_clients_back() -> None:
    agg = Aggregator()
    agg.apply(report("A", "b1", 7, active=4, total=10), now=0)
    agg.apply(report("A", "b2", 0, active=1, total=1), now=1)
    agg.apply(report("A", "b1", 8, active=4, total=12), now=2)
    stats = agg.snapshot(now=2)
    assert stats.active_connections == 1
    assert stats.total_sessions == 13


def test_a_vanished_edge_is_dropped_after_three_intervals_but_keeps_its_counts() -> None:
    agg = Aggregator(missed_reports=3)
    agg.apply(report("A", active=2, total=2, interval=5), now=0)
    agg.apply(report("B", active=1, total=1, interval=5), now=0)
    for t in (5, 10, 15):
        agg.apply(report("B", seq=t, active=1, total=1, interval=5), now=t)
    assert agg.snapshot(now=15).active_connections == 3
    stats = agg.snapshot(now=15.1)
    assert stats.active_connections == 1 and stats.total_sessions == 3


def test_repeated_or_out_of_order_reports_never_lower_anything() -> None:
    agg = Aggregator()
    agg.apply(report(seq=5, active=3, total=9, sent=90), now=0)
    agg.apply(report(seq=4, active=1, total=7, sent=70), now=1)
    stats = agg.snapshot(now=1)
    assert (stats.active_connections, stats.total_sessions, stats.messages_sent) == (3, 9, 90)


def test_retention_folds_old_boots_into_the_base_without_changing_totals() -> None:
    agg = Aggregator(retention_s=100)
    agg.apply(report("A", total=4, sent=8, received=2), now=0)
    agg.apply(report("B", total=1), now=150)
    before = agg.totals()
    assert agg.expire(now=150)
    assert list(agg.state.boots) == ["B/b1"]
    assert agg.totals() == before
    assert not agg.expire(now=151)


def test_the_state_survives_a_round_trip_through_json() -> None:
    agg = Aggregator()
    agg.apply(report("A", active=2, total=5, sent=9, types={ClientType.MOBILE: 2}), now=0)
    agg.state.base = Counters(total_sessions=100)
    again = Aggregator(AggregateState.model_validate_json(agg.state.model_dump_json()))
    assert again.snapshot(now=1) == agg.snapshot(now=1)


_report = st.builds(
    report,
    edge=st.sampled_from(["A", "B"]),
    boot=st.sampled_from(["b1", "b2", "b3"]),
    seq=st.integers(0, 20),
    active=st.integers(0, 50),
    total=st.integers(0, 1000),
    sent=st.integers(0, 10**6),
    received=st.integers(0, 10**6),
)


@given(st.lists(st.tuples(_report, st.floats(0, 30)), max_size=40), st.floats(1, 10**5))
def test_totals_never_go_down_whatever_arrives_and_whenever_boots_expire(
    steps: list[tuple[EdgeReport, float]], retention: float
) -> None:
    agg = Aggregator(retention_s=retention)
    now = 0.0
    last = agg.totals()
    for rep, gap in steps:
        now += gap
        agg.apply(rep, now)
        agg.expire(now)
        totals = agg.totals()
        assert totals.total_sessions >= last.total_sessions
        assert totals.messages_sent >= last.messages_sent
        assert totals.messages_received >= last.messages_received
        last = totals
        assert agg.snapshot(now).active_connections <= sum(
            e.active_connections for e in agg.state.boots.values()
        )


@given(st.lists(_report, min_size=1, max_size=20))
def test_a_stats_restart_from_the_persisted_state_changes_nothing(
    reports: list[EdgeReport],
) -> None:
    agg = Aggregator()
    for rep in reports:
        agg.apply(rep, 0)
    restarted = Aggregator(AggregateState.model_validate_json(agg.state.model_dump_json()))
    assert restarted.snapshot(now=1) == agg.snapshot(now=1)


@pytest.mark.parametrize("missed", [1, 3, 5])
def test_missed_reports_setting_decides_when_an_edge_drops(missed: int) -> None:
    agg = Aggregator(missed_reports=missed)
    agg.apply(report(active=1, interval=2), now=0)
    assert agg.snapshot(now=2 * missed).active_connections == 1
    assert agg.snapshot(now=2 * missed + 0.01).active_connections == 0
