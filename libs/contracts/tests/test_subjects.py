from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricewire_contracts import Group, SubjectCatalog, SubjectError

S = SubjectCatalog("pw")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (S.price("BTC"), "pw.v1.price.BTC"),
        (S.market, "pw.v1.market"),
        (S.news, "pw.v1.news"),
        (S.alert("price_threshold"), "pw.v1.alert.price_threshold"),
        (S.provider_health("coingecko"), "pw.v1.provider.health.coingecko"),
        (S.provider_stats, "pw.v1.provider.stats"),
        (S.stats_update, "pw.v1.stats.update"),
        (S.stats_get, "pw.v1.stats.get"),
        (S.broadcast(Group.NEWS), "pw.v1.broadcast.news"),
        (S.session_opened, "pw.v1.session.opened"),
        (S.edge_report("edge-1"), "pw.v1.edge.report.edge-1"),
    ],
)
def test_subjects_are_versioned_with_fixed_tokens_first(subject: str, expected: str) -> None:
    assert subject == expected


@pytest.mark.parametrize(
    ("group", "subjects"),
    [
        (Group.PRICES, ("pw.v1.price.*",)),
        (Group.MARKET, ("pw.v1.market", "pw.v1.provider.stats")),
        (Group.NEWS, ("pw.v1.news",)),
        (Group.ALERTS, ("pw.v1.alert.*",)),
    ],
)
def test_each_group_maps_to_its_subjects(group: Group, subjects: tuple[str, ...]) -> None:
    assert S.group_subjects(group) == subjects


def test_all_is_the_union_of_every_data_group() -> None:
    union = {
        s
        for g in (Group.MARKET, Group.PRICES, Group.NEWS, Group.ALERTS)
        for s in S.group_subjects(g)
    }
    assert set(S.group_subjects(Group.ALL)) == union


@pytest.mark.parametrize(
    ("subject", "group"),
    [
        ("pw.v1.price.ETH", Group.PRICES),
        ("pw.v1.market", Group.MARKET),
        ("pw.v1.provider.stats", Group.MARKET),
        ("pw.v1.news", Group.NEWS),
        ("pw.v1.alert.large_move", Group.ALERTS),
        ("pw.v1.stats.update", None),
        ("pw.v1.broadcast.all", None),
        ("other.v1.price.BTC", None),
    ],
)
def test_group_of_a_concrete_subject(subject: str, group: Group | None) -> None:
    assert S.group_of(subject) == group


@pytest.mark.parametrize("bad", ["btc", "BT C", "BTC.X", "", "*", ">"])
def test_a_symbol_that_is_not_one_token_is_refused(bad: str) -> None:
    with pytest.raises(SubjectError):
        S.price(bad)


@given(st.text(max_size=30))
def test_a_built_subject_never_contains_wildcards_or_extra_tokens(symbol: str) -> None:
    try:
        subject = S.price(symbol)
    except SubjectError:
        return
    assert subject.count(".") == 3
    assert "*" not in subject and ">" not in subject and " " not in subject


def test_stream_and_bucket_names_are_derived_from_the_root() -> None:
    assert S.stream(Group.PRICES) == "PW_PRICES"
    assert S.sessions_bucket == "pw_sessions"
    with pytest.raises(SubjectError):
        S.stream(Group.ALL)
    with pytest.raises(SubjectError):
        SubjectCatalog("bad.root")
