from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_contracts import EdgeReport
from pricewire_registry.liveness import EdgeLiveness, ReconcileReason, unlisted


def report(
    edge: str = "A",
    *,
    boot: str = "b1",
    interval: float = 5.0,
    published: int = 0,
    unconfirmed: int = 0,
    active: int = 0,
) -> EdgeReport:
    return EdgeReport(
        edge_id=edge,
        boot_id=boot,
        sequence=0,
        report_interval_s=interval,
        sent_at="2024-01-15T10:00:00",
        active_connections=active,
        total_sessions=active,
        messages_sent=0,
        messages_received=0,
        session_events=published,
        session_events_unconfirmed=unconfirmed,
    )


def reconciled_on(live: EdgeLiveness, r: EdgeReport, now: float) -> ReconcileReason | None:
    """Feed a report; if it asks for a reconciliation, do it (the edge answers at once)."""
    reason = live.on_report(r, now)
    if reason is not None:
        live.reconciled(r.edge_id, r.boot_id, r.session_events_unconfirmed)
    return reason


def test_an_edge_is_lost_after_three_silent_intervals_not_before() -> None:
    live = EdgeLiveness(default_interval_s=5)
    live.on_report(report(interval=2.0), now=100.0)
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
        live.on_report(report(), now=float(t))
        assert live.lost(now=t + 14.9) == []


# Each row: the reports of one edge, in order, as (boot, published, unconfirmed); and what each
# report decides, when every reconciliation it asks for succeeds at once.
RECONCILE_TABLE: list[tuple[str, list[tuple[str, int, int]], list[ReconcileReason | None]]] = [
    (
        "the first report after the registry starts: it cannot know what it missed",
        [("b1", 40, 0), ("b1", 60, 0)],
        ["first_report", None],
    ),
    (
        "the edge restarted: the old boot's closes may be lost",
        [("b1", 10, 0), ("b1", 12, 0), ("b2", 3, 0), ("b2", 9, 0)],
        ["first_report", None, "new_boot", None],
    ),
    (
        "an event JetStream did not acknowledge: reconcile once, not again for the same one",
        [("b1", 10, 0), ("b1", 20, 1), ("b1", 30, 1), ("b1", 40, 3), ("b1", 50, 3)],
        ["first_report", "unconfirmed_events", None, "unconfirmed_events", None],
    ),
    (
        "constant churn without loss: thousands of events, never a reconciliation",
        [("b1", n * 5_000, 0) for n in range(1, 30)],
        ["first_report"] + [None] * 28,
    ),
    (
        "a quiet edge: no events at all",
        [("b1", 0, 0)] * 5,
        ["first_report", None, None, None, None],
    ),
]


@pytest.mark.parametrize(
    ("reports", "decisions"),
    [(r, d) for _, r, d in RECONCILE_TABLE],
    ids=[name for name, _, _ in RECONCILE_TABLE],
)
def test_when_an_edge_is_reconciled(
    reports: list[tuple[str, int, int]], decisions: list[ReconcileReason | None]
) -> None:
    live = EdgeLiveness(default_interval_s=5)
    got = [
        reconciled_on(live, report(boot=b, published=p, unconfirmed=u), now=5.0 * i)
        for i, (b, p, u) in enumerate(reports)
    ]
    assert got == decisions


def test_an_edge_that_does_not_answer_is_asked_again_at_its_next_report() -> None:
    live = EdgeLiveness(default_interval_s=5)
    assert live.on_report(report(unconfirmed=0), 0.0) == "first_report"  # no answer
    assert live.on_report(report(unconfirmed=0), 5.0) == "first_report"  # asked again
    live.reconciled("A", "b1", 0)
    assert live.on_report(report(unconfirmed=2), 10.0) == "unconfirmed_events"  # no answer
    assert live.on_report(report(unconfirmed=2), 15.0) == "unconfirmed_events"
    live.reconciled("A", "b1", 2)
    assert live.on_report(report(unconfirmed=2), 20.0) is None


def test_a_reconciliation_covers_only_what_its_list_had_seen() -> None:
    live = EdgeLiveness(default_interval_s=5)
    live.on_report(report(unconfirmed=1), 0.0)
    # the list was built before the second failure: that one is reconciled on its own
    live.reconciled("A", "b1", 1)
    assert live.on_report(report(unconfirmed=2), 5.0) == "unconfirmed_events"


def test_a_list_from_an_older_boot_does_not_cover_the_new_one() -> None:
    live = EdgeLiveness(default_interval_s=5)
    live.on_report(report(boot="b1"), 0.0)
    live.on_report(report(boot="b2"), 5.0)  # restarted while the old list was in flight
    live.reconciled("A", "b1", 0)
    assert live.on_report(report(boot="b2"), 10.0) == "new_boot"


def test_a_forgotten_edge_is_reconciled_again_and_a_late_answer_does_not_revive_it() -> None:
    live = EdgeLiveness(default_interval_s=5)
    reconciled_on(live, report(), 0.0)
    live.forget("A")  # lost (or the registry was cut off from NATS)
    live.reconciled("A", "b1", 0)  # a reconciliation that finished late
    assert live.known() == []
    assert live.on_report(report(), 30.0) == "first_report"


def test_edges_are_reconciled_independently() -> None:
    live = EdgeLiveness(default_interval_s=5)
    reconciled_on(live, report("A"), 0.0)
    assert live.on_report(report("B"), 0.0) == "first_report"
    assert live.on_report(report("A", unconfirmed=1), 5.0) == "unconfirmed_events"
    assert live.on_report(report("B"), 5.0) == "first_report"  # B still unanswered


UNLISTED_TABLE = [
    ("the edge lists everything we hold", {"s1", "s2"}, {"s1", "s2"}, []),
    ("a lost close: we hold s2, the edge does not list it", {"s1", "s2"}, {"s1"}, ["s2"]),
    ("a lost open: listed, unknown here, left alone", {"s1"}, {"s1", "s9"}, []),
    ("opened after our snapshot: not ours to judge", set(), {"s3"}, []),
    ("a restarted edge lists nothing of the old boot", {"s1", "s2"}, set(), ["s1", "s2"]),
]


@pytest.mark.parametrize(
    ("known", "listed", "closed"),
    [(k, li, c) for _, k, li, c in UNLISTED_TABLE],
    ids=[name for name, *_ in UNLISTED_TABLE],
)
def test_a_reconciliation_closes_only_the_known_sessions_the_edge_does_not_list(
    known: set[str], listed: set[str], closed: list[str]
) -> None:
    assert unlisted(known, listed) == closed


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        EdgeLiveness(default_interval_s=0)


@given(st.lists(st.floats(min_value=0.01, max_value=4.99), min_size=1, max_size=30))
def test_an_edge_reporting_within_its_interval_is_never_lost(gaps: list[float]) -> None:
    live = EdgeLiveness(default_interval_s=5)
    now = 0.0
    for gap in gaps:
        live.on_report(report(), now)
        now += gap
        assert live.lost(now) == []
        assert live.alive("A", now)


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40))
def test_churn_without_unconfirmed_events_reconciles_once(published: list[int]) -> None:
    live = EdgeLiveness(default_interval_s=5)
    total, decisions = 0, []
    for i, n in enumerate(published):
        total += n
        decisions.append(reconciled_on(live, report(published=total), 5.0 * i))
    assert decisions == ["first_report"] + [None] * (len(published) - 1)
