from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_contracts import ProviderHealth
from pricewire_stats.providers import ProviderBoard


def health(
    pid: str, status: str = "online", rate: float = 100.0, polls: int = 10, **extra: Any
) -> ProviderHealth:
    outcome = {
        "online": "ok",
        "offline": "timeout",
        "rate_limited": "rate_limited",
        "disabled": "disabled",
    }[status]
    values: dict[str, Any] = {
        "provider_id": pid,
        "name": pid.title(),
        "category": "market",
        "outcome": outcome,
        "status": status,
        "success_rate": rate,
        "window_polls": polls,
        "checked_at": "2024-01-15T10:00:00",
    }
    values.update(extra)
    return ProviderHealth(**values)


def test_no_provider_heard_no_message() -> None:
    assert ProviderBoard().message(now=0) is None


def test_summary_has_the_guides_fields_and_the_extras() -> None:
    board = ProviderBoard()
    for h in (
        health("a", "online", 100, 10),
        health("b", "online", 90, 10),
        health("c", "offline", 0, 10),
        health("d", "rate_limited", 50, 20),
        health("e", "disabled", 0, 0),
    ):
        board.observe(h, now=0)
    message = board.message(now=1)
    assert message is not None
    body = message.model_dump(mode="json", exclude_none=True)
    assert body["type"] == "provider_stats"
    assert body["data"]["summary"] == {
        "total_providers": 5,
        "online": 2,
        "offline": 1,
        "overall_success_rate": 58.0,  # (1000 + 900 + 0 + 1000) / 50 polls, disabled left out
        "rate_limited": 1,
        "disabled": 1,
    }
    assert [p["provider_id"] for p in body["data"]["providers"]] == ["a", "b", "c", "d", "e"]
    assert body["data"]["providers"][0] == {
        "provider_id": "a",
        "name": "A",
        "category": "market",
        "status": "online",
        "success_rate": 100.0,
        "breaker": "closed",
        "last_checked": "2024-01-15T10:00:00",
        "feeds": [],
        "mirror": False,
    }


def test_rows_name_the_upstream_and_mark_mirrors() -> None:
    board = ProviderBoard()
    board.observe(health("binance_public", upstream="binance"), now=0)
    board.observe(health("binance_vision", upstream="binance", mirror=True), now=0)
    message = board.message(now=0)
    assert message is not None
    rows = {p.provider_id: (p.upstream, p.mirror) for p in message.data.providers}
    assert rows == {"binance_public": ("binance", False), "binance_vision": ("binance", True)}


def test_without_poll_counts_the_rate_is_the_plain_mean() -> None:
    board = ProviderBoard()
    board.observe(health("a", rate=80, polls=0), now=0)
    board.observe(health("b", rate=95, polls=0), now=0)
    message = board.message(now=0)
    assert message is not None and message.data.summary.overall_success_rate == 87.5


def test_the_newest_check_wins_even_when_an_older_one_arrives_later() -> None:
    board = ProviderBoard()
    board.observe(health("a", "offline", checked_at="2024-01-15T10:00:05"), now=0)
    board.observe(health("a", "online", checked_at="2024-01-15T10:00:01"), now=1)
    message = board.message(now=1)
    assert message is not None and message.data.summary.offline == 1


def test_a_provider_not_heard_from_goes_offline_then_leaves() -> None:
    board = ProviderBoard(stale_after_s=60, forget_after_s=600)
    board.observe(health("a"), now=0)
    board.observe(health("z", "disabled"), now=0)
    message = board.message(now=61)
    assert message is not None
    assert message.data.summary.offline == 1 and message.data.summary.disabled == 1
    assert board.message(now=601) is None


@pytest.mark.parametrize("count", [1, 7, 150])
def test_counts_add_up(count: int) -> None:
    board = ProviderBoard()
    statuses = ["online", "offline", "rate_limited", "disabled"]
    for i in range(count):
        board.observe(health(f"p{i}", statuses[i % 4]), now=0)
    message = board.message(now=0)
    assert message is not None
    s = message.data.summary
    assert s.online + s.offline + s.rate_limited + s.disabled == s.total_providers == count


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["online", "offline", "rate_limited", "disabled"]),
            st.floats(0, 100),
            st.integers(0, 1000),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_overall_success_rate_is_a_percentage(rows: list[tuple[str, float, int]]) -> None:
    board = ProviderBoard()
    for i, (status, rate, polls) in enumerate(rows):
        board.observe(health(f"p{i}", status, rate, polls), now=0)
    message = board.message(now=0)
    assert message is not None
    assert 0 <= message.data.summary.overall_success_rate <= 100


def test_rows_say_what_each_provider_feeds_and_its_chain_head() -> None:
    from pricewire_contracts import ChainHeadReading

    head = ChainHeadReading(chain="ethereum", height=19_000_000, behind=2, base_fee_gwei=21.5)
    board = ProviderBoard(stale_after_s=300)
    board.observe(health("ankr_eth", feeds=["chain"], chain=head), now=0)
    board.observe(health("kraken", feeds=["prices"]), now=0)
    board.observe(health("blockchair", feeds=["prices", "chain"], chain=head), now=-400)
    message = board.message(now=1)
    assert message is not None
    rows = {p.provider_id: p for p in message.data.providers}
    assert (rows["ankr_eth"].feeds, rows["ankr_eth"].chain) == (["chain"], head)
    assert (rows["kraken"].feeds, rows["kraken"].chain) == (["prices"], None)
    # a provider gone silent is offline, and its head is no longer vouched for
    assert (rows["blockchair"].status, rows["blockchair"].chain) == ("offline", None)
    assert rows["blockchair"].feeds == ["prices", "chain"]
