"""The edge's session list, paged for the registry's reconciliation (no NATS needed)."""

from __future__ import annotations

from typing import Any

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_contracts import EdgeSessionsRequest, SubjectCatalog
from pricewire_contracts.events import EDGE_SESSION_PAGE_BYTES
from pricewire_edge.session_ledger import SessionLedger
from pricewire_edge.settings import EdgeSettings


def ledger(ids: set[str]) -> SessionLedger:
    return SessionLedger(
        edge_id="e",
        boot_id="b",
        subjects=SubjectCatalog(),
        link=NatsLink(EdgeSettings(), name="test"),
        session_ids=lambda: iter(ids),
    )


def pages(book: SessionLedger, **request: Any) -> list[list[str]]:
    out, after = [], None
    while True:
        page = book.page(EdgeSessionsRequest(after=after, **request))
        out.append(page.session_ids)
        if page.next_cursor is None:
            return out
        after = page.next_cursor


def test_pages_hold_every_id_once_in_order() -> None:
    ids = {f"s{i:05d}" for i in range(25)}
    assert pages(ledger(ids), limit=10) == [
        sorted(ids)[:10],
        sorted(ids)[10:20],
        sorted(ids)[20:],
    ]


def test_a_page_stops_at_its_byte_budget_whatever_the_id_length() -> None:
    long_ids = {f"{i:06d}" + "x" * 122 for i in range(10_000)}  # 128 characters each
    book = ledger(long_ids)
    got = pages(book)
    assert sum(len(p) for p in got) == 10_000 and len(got) > 1
    for page in got:
        assert len(dumps(page)) <= EDGE_SESSION_PAGE_BYTES + 200


def test_later_pages_come_from_the_first_pages_snapshot() -> None:
    ids = {"a", "b", "c", "d"}
    book = ledger(ids)
    first = book.page(EdgeSessionsRequest(limit=2))
    ids.discard("c")  # closes while the registry pages: the list is as of the first page
    ids.add("bb")
    assert book.page(EdgeSessionsRequest(after=first.next_cursor, limit=2)).session_ids == [
        "c",
        "d",
    ]


def test_a_cursor_whose_snapshot_is_gone_pages_on_over_the_live_set() -> None:
    book = ledger({"a", "b", "c", "d"})
    page = book.page(EdgeSessionsRequest(after="expired:b", limit=10))
    assert page.session_ids == ["c", "d"] and page.next_cursor is None


def test_an_empty_edge_answers_one_empty_page() -> None:
    page = ledger(set()).page(EdgeSessionsRequest())
    assert page.session_ids == [] and page.next_cursor is None
    assert page.session_events == 0 and page.session_events_unconfirmed == 0


def test_events_published_before_the_first_connect_count_as_unconfirmed() -> None:
    book = ledger(set())
    assert book.next_seq() == 1 and book.next_seq() == 2
    book.publish("pricewire.v1.session.opened", b"{}")  # not connected: nowhere to send it
    assert book.published == 2 and book.unconfirmed == 1
