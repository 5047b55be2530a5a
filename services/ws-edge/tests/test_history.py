from __future__ import annotations

from pricewire_contracts import Group
from pricewire_edge.history import GroupHistory, Stored


def _prices(*items: tuple[int, str]) -> GroupHistory:
    h = GroupHistory(Group.PRICES, maxlen=5)
    for seq, symbol in items:
        h.add(Stored(seq, symbol, f"{symbol}{seq}".encode()))
    return h


def test_snapshot_is_the_latest_price_per_symbol_in_seq_order() -> None:
    h = _prices((1, "BTC"), (2, "ETH"), (3, "BTC"))
    assert [(i.seq, i.symbol) for i in h.snapshot()] == [(2, "ETH"), (3, "BTC")]
    assert [i.seq for i in h.snapshot(frozenset({"BTC"}))] == [3]


def test_an_old_or_repeated_seq_is_not_kept() -> None:
    h = _prices((1, "BTC"), (2, "ETH"))
    assert not h.add(Stored(2, "ETH", b""))
    assert not h.add(Stored(1, "BTC", b""))
    assert h.last_seq == 2


def test_after_replays_in_order_with_the_symbol_filter() -> None:
    h = _prices((1, "BTC"), (2, "ETH"), (3, "BTC"), (4, "SOL"))
    assert [i.seq for i in h.after(1)] == [2, 3, 4]
    assert [i.seq for i in h.after(1, frozenset({"BTC"}))] == [3]
    assert h.after(4) == []


def test_covers_only_while_the_ring_reaches_back() -> None:
    h = _prices(*[(n, "BTC") for n in range(1, 9)])  # maxlen 5: keeps 4..8
    assert h.first_seq == 4
    assert h.covers(3)
    assert h.covers(7)
    assert not h.covers(2)


def test_the_snapshot_loaded_at_start_is_not_complete_history() -> None:
    h = GroupHistory(Group.PRICES, maxlen=100)
    h.complete_after = 10  # loaded last-per-subject up to seq 10: older gaps unknown
    h.add(Stored(7, "BTC", b""))
    h.add(Stored(10, "ETH", b""))
    assert not h.covers(5)
    assert h.covers(10)
    h.add(Stored(11, "BTC", b""))
    assert [i.seq for i in h.after(10)] == [11]
    assert GroupHistory(Group.NEWS, maxlen=5).covers(0)  # nothing ever published


def test_news_snapshot_is_the_tail() -> None:
    h = GroupHistory(Group.NEWS, maxlen=100, tail=2)
    for seq in range(1, 6):
        h.add(Stored(seq, None, b""))
    assert [i.seq for i in h.snapshot()] == [4, 5]
