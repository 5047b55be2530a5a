from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_contracts import EdgeReport
from pricewire_registry.liveness import EdgeLiveness


def report(
    edge: str = "A", sessions: list[str] | None = None, *, interval: float = 5.0
) -> EdgeReport:
    ids = sessions or []
    return EdgeReport(
        edge_id=edge,
        boot_id="b1",
        sequence=0,
        report_interval_s=interval,
        sent_at="2024-01-15T10:00:00",
        active_connections=len(ids),
        total_sessions=len(ids),
        messages_sent=0,
        messages_received=0,
        session_ids=ids,
    )


def test_an_edge_is_lost_after_three_silent_intervals_not_before() -> None:
    live = EdgeLiveness(default_interval_s=5)
    live.on_report(report(interval=2.0), now=100.0, known=[])
    assert live.lost(now=105.9) == []
    assert live.lost(now=106.1) == ["A"]
    live.forget("A")
    assert live.lost(now=1000) == []


def test_an_edge_seen_only_through_sessions_gets_the_default_grace() -> None:
    live = EdgeLiveness(default_interval_s=5, missed_reports=3)
    live.notice("A", now=0.0)
    live.notice("A", now=14.0)  # events do not refresh the clock
    assert live.lost(now=15.5) == ["A"]


def test_each_report_restarts_the_clock() -> None:
    live = EdgeLiveness(default_interval_s=5)
    for t in range(0, 100, 5):
        live.on_report(report(), now=float(t), known=[])
        assert live.lost(now=t + 14.9) == []


def test_a_session_missing_from_two_consecutive_reports_is_stale() -> None:
    live = EdgeLiveness(default_interval_s=5)
    assert live.on_report(report(sessions=["s1"]), 0.0, known={"s1", "s2"}) == []
    assert live.on_report(report(sessions=["s1"]), 5.0, known={"s1", "s2"}) == ["s2"]


def test_a_session_opened_after_the_report_was_built_is_not_stale() -> None:
    live = EdgeLiveness(default_interval_s=5)
    # s2 is known here before the report that could list it: the next report does
    assert live.on_report(report(sessions=["s1"]), 0.0, known={"s1", "s2"}) == []
    assert live.on_report(report(sessions=["s1", "s2"]), 5.0, known={"s1", "s2"}) == []
    assert live.on_report(report(sessions=["s1", "s2"]), 10.0, known={"s1", "s2"}) == []


def test_an_edge_that_does_not_list_its_sessions_is_not_reconciled() -> None:
    live = EdgeLiveness(default_interval_s=5)
    unlisted = report(sessions=[]).model_copy(update={"active_connections": 3})
    for t in (0.0, 5.0, 10.0):
        assert live.on_report(unlisted, t, known={"s1"}) == []


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        EdgeLiveness(default_interval_s=0)


@given(st.lists(st.floats(min_value=0.01, max_value=4.99), min_size=1, max_size=30))
def test_an_edge_reporting_within_its_interval_is_never_lost(gaps: list[float]) -> None:
    live = EdgeLiveness(default_interval_s=5)
    now = 0.0
    for gap in gaps:
        live.on_report(report(), now, known=[])
        now += gap
        assert live.lost(now) == []
        assert live.alive("A", now)
