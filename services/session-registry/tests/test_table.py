from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_contracts import ClientType, SessionClosed, SessionOpened
from pricewire_registry.errors import CursorError
from pricewire_registry.table import (
    Change,
    SessionRecord,
    decode_cursor,
    encode_cursor,
    later,
    on_activity,
    on_closed,
    on_edge_lost,
    on_opened,
    page_sessions,
    session_key,
)

SID = "s-1"


def opened(
    edge: str = "A", *, resumed: bool = False, at: str = "2024-01-15T10:00:00"
) -> SessionOpened:
    return SessionOpened(
        session_id=SID,
        edge_id=edge,
        client_type=ClientType.BROWSER,
        connected_at=at,
        resumed=resumed,
    )


def closed(edge: str = "A", at: str = "2024-01-15T10:05:00") -> SessionClosed:
    return SessionClosed(session_id=SID, edge_id=edge, closed_at=at)


Event = tuple[int, SessionOpened | SessionClosed]


def apply(record: SessionRecord | None, event: Event) -> tuple[SessionRecord | None, Change | None]:
    seq, ev = event
    change = (
        on_opened(record, ev, seq) if isinstance(ev, SessionOpened) else on_closed(record, ev, seq)
    )
    return (change.record if change else record), change


def replay(events: list[Event]) -> tuple[SessionRecord | None, int]:
    record: SessionRecord | None = None
    counted = 0
    for event in events:
        record, change = apply(record, event)
        counted += 1 if change and change.new_session else 0
    return record, counted


def live_edge(record: SessionRecord | None) -> str | None:
    return record.edge_id if record is not None and record.live else None


@pytest.mark.parametrize(
    ("events", "expected_edge"),
    [
        pytest.param([(1, opened())], "A", id="opened"),
        pytest.param([(1, opened()), (2, closed())], None, id="opened-closed"),
        pytest.param([(2, closed()), (1, opened())], None, id="close-arrives-first"),
        pytest.param(
            [(1, opened()), (2, closed()), (3, opened(resumed=True))], "A", id="resumed-same-edge"
        ),
        pytest.param(
            [(1, opened()), (3, opened("B", resumed=True)), (4, closed("A"))],
            "B",
            id="resumed-elsewhere-then-late-close-of-old-edge",
        ),
        pytest.param(
            [(1, opened()), (3, opened("B", resumed=True)), (4, closed("A")), (5, closed("B"))],
            None,
            id="resumed-elsewhere-then-closed-there",
        ),
    ],
)
def test_session_state_is_the_same_whatever_order_events_arrive_in(
    events: list[Event], expected_edge: str | None
) -> None:
    for order in itertools.permutations(events):
        record, counted = replay(list(order))
        assert live_edge(record) == expected_edge, order
        fresh = any(isinstance(e, SessionOpened) and not e.resumed for _, e in events)
        assert counted == (1 if fresh else 0)


def test_a_redelivered_event_changes_nothing_and_is_not_counted_twice() -> None:
    record, change = apply(None, (1, opened()))
    assert change is not None and change.new_session
    again, change = apply(record, (1, opened()))
    assert change is None and again == record
    record, change = apply(record, (2, closed()))
    assert change is not None and change.closed
    assert apply(record, (2, closed()))[1] is None


def test_a_resume_keeps_the_birth_time_and_is_not_a_new_session() -> None:
    record, _ = replay([(1, opened(at="2024-01-15T10:00:00")), (2, closed())])
    record, change = apply(record, (3, opened("B", resumed=True, at="2024-01-15T10:06:00")))
    assert change is not None and not change.new_session
    assert record is not None and record.live
    info = record.info()
    assert info.connected_at == "2024-01-15T10:00:00"
    assert info.last_activity == "2024-01-15T10:06:00"


def test_a_resume_of_a_session_never_seen_is_recorded_but_not_counted() -> None:
    record, change = apply(None, (7, opened(resumed=True)))
    assert change is not None and not change.new_session and record is not None and record.live


def test_edge_lost_closes_only_sessions_living_on_that_edge() -> None:
    record, _ = apply(None, (1, opened("A")))
    assert record is not None
    assert on_edge_lost(record, "B", "2024-01-15T11:00:00", "edge_lost") is None
    change = on_edge_lost(record, "A", "2024-01-15T11:00:00", "edge_lost")
    assert change is not None and change.closed and not change.record.live
    assert change.record.close_reason == "edge_lost"
    assert on_edge_lost(change.record, "A", "2024-01-15T11:00:00", "edge_lost") is None
    # a later resume elsewhere brings it back
    back, resumed = apply(change.record, (9, opened("B", resumed=True)))
    assert resumed is not None and back is not None and back.live and back.edge_id == "B"


def test_activity_moves_last_activity_forward_only_on_the_live_edge() -> None:
    record, _ = apply(None, (1, opened("A", at="2024-01-15T10:00:00")))
    assert record is not None
    assert on_activity(record, "B", "2024-01-15T10:10:00") is None
    change = on_activity(record, "A", "2024-01-15T10:10:00")
    assert change is not None and change.record.last_activity == "2024-01-15T10:10:00"
    assert on_activity(change.record, "A", "2024-01-15T10:09:00") is None
    assert on_activity(None, "A", "2024-01-15T10:10:00") is None


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2024-01-15T10:00:00", "2024-01-15T10:00:01", "2024-01-15T10:00:01"),
        ("2024-01-15T10:00:00+01:00", "2024-01-15T09:30:00", "2024-01-15T09:30:00"),
        (None, "2024-01-15T10:00:00", "2024-01-15T10:00:00"),
        ("2024-01-15T10:00:00", None, "2024-01-15T10:00:00"),
        ("garbage-b", "garbage-a", "garbage-b"),
    ],
)
def test_later_compares_instants_not_strings(a: str | None, b: str | None, expected: str) -> None:
    assert later(a, b) == expected


@pytest.mark.parametrize(
    ("session_id", "valid"),
    [("550e8400-e29b-41d4-a716-446655440000", True), ("a.b", False), ("", False), ("x y", False)],
)
def test_only_ids_that_make_one_kv_token_get_a_key(session_id: str, valid: bool) -> None:
    assert (session_key(session_id) is not None) is valid


def _record(sid: str, kind: ClientType = ClientType.API, *, live: bool = True) -> SessionRecord:
    event = SessionOpened(
        session_id=sid, edge_id="A", client_type=kind, connected_at="2024-01-15T10:00:00"
    )
    change = on_opened(None, event, 1)
    assert change is not None
    record = change.record
    if not live:
        closing = on_closed(record, SessionClosed(session_id=sid, edge_id="A", closed_at="x"), 2)
        assert closing is not None
        record = closing.record
    return record


def test_paging_walks_every_live_session_once_in_id_order() -> None:
    records = [_record(f"s{i:03d}") for i in range(25)] + [_record("s999", live=False)]
    seen: list[str] = []
    after = None
    while True:
        page = page_sessions(records, limit=10, after=after)
        seen += [s.session_id for s in page.sessions]
        if page.next_cursor is None:
            break
        after = decode_cursor(page.next_cursor)
    assert seen == [f"s{i:03d}" for i in range(25)]


def test_filter_by_client_type_and_no_cursor_without_a_limit() -> None:
    records = [_record("a", ClientType.BROWSER), _record("b", ClientType.API)]
    page = page_sessions(records, client_type=ClientType.BROWSER)
    assert [s.session_id for s in page.sessions] == ["a"] and page.next_cursor is None


@pytest.mark.parametrize("cursor", ["%%%", "a.b", "", "////", "x" * 129])
def test_a_forged_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(cursor)


@given(st.from_regex(r"[A-Za-z0-9_=-]{1,128}", fullmatch=True))
def test_cursor_round_trips(session_id: str) -> None:
    assert decode_cursor(encode_cursor(session_id)) == session_id


_edges = st.sampled_from(["A", "B", "C"])
_event = st.one_of(
    st.builds(lambda e, r: opened(e, resumed=r), _edges, st.booleans()),
    st.builds(closed, _edges),
)


@given(st.lists(_event, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_any_interleaving_and_any_redelivery_give_one_result(
    events: list[SessionOpened | SessionClosed], rnd: object
) -> None:
    import random

    assert isinstance(rnd, random.Random)
    numbered: list[Event] = list(enumerate(events, start=1))
    reference, counted = replay(numbered)
    shuffled = numbered + rnd.sample(numbered, k=min(3, len(numbered)))  # some redelivered
    rnd.shuffle(shuffled)
    record, counted_again = replay(shuffled)
    assert live_edge(record) == live_edge(reference)
    assert counted_again == counted <= 1
