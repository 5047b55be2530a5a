from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pricewire_contracts import DATA_GROUPS, Group
from pricewire_edge.subscriptions import Subscription, SubscriptionIndex


def test_a_prices_client_gets_prices_and_not_market() -> None:
    idx: SubscriptionIndex[str] = SubscriptionIndex()
    idx.subscribe("a", Subscription(Group.PRICES))
    idx.subscribe("b", Subscription(Group.MARKET))
    assert list(idx.receivers(Group.PRICES, "BTC")) == ["a"]
    assert list(idx.receivers(Group.MARKET)) == ["b"]


def test_all_means_every_group_and_a_double_subscriber_is_found_once() -> None:
    idx: SubscriptionIndex[str] = SubscriptionIndex()
    idx.subscribe("a", Subscription(Group.ALL))
    idx.subscribe("a", Subscription(Group.PRICES, frozenset({"BTC"})))
    for group in DATA_GROUPS:
        assert list(idx.receivers(group, "BTC")) == ["a"]
    assert list(idx.receivers(Group.PRICES, "ETH")) == ["a"]


def test_symbols_narrow_prices() -> None:
    idx: SubscriptionIndex[str] = SubscriptionIndex()
    idx.subscribe("a", Subscription(Group.PRICES, frozenset({"BTC", "ETH"})))
    assert list(idx.receivers(Group.PRICES, "BTC")) == ["a"]
    assert list(idx.receivers(Group.PRICES, "SOL")) == []
    idx.subscribe("a", Subscription(Group.PRICES, frozenset({"SOL"})))  # replaces the filter
    assert list(idx.receivers(Group.PRICES, "BTC")) == []
    assert list(idx.receivers(Group.PRICES, "SOL")) == ["a"]


def test_unsubscribe_and_remove_stop_delivery_and_leave_nothing_behind() -> None:
    idx: SubscriptionIndex[str] = SubscriptionIndex()
    idx.subscribe("a", Subscription(Group.PRICES, frozenset({"BTC"})))
    idx.subscribe("a", Subscription(Group.NEWS))
    assert idx.unsubscribe("a", Group.PRICES)
    assert not idx.unsubscribe("a", Group.PRICES)
    assert list(idx.receivers(Group.PRICES, "BTC")) == []
    assert idx.by_symbol == {}
    idx.remove("a")
    assert all(not members for members in idx.whole.values())
    assert idx.group_counts() == {}


def test_group_counts_count_clients_per_subscribed_group() -> None:
    idx: SubscriptionIndex[str] = SubscriptionIndex()
    idx.subscribe("a", Subscription(Group.ALL))
    idx.subscribe("b", Subscription(Group.PRICES))
    idx.subscribe("b", Subscription(Group.ALL))
    assert idx.group_counts() == {Group.ALL: 2, Group.PRICES: 1}


ops = st.lists(
    st.tuples(
        st.sampled_from(["sub", "unsub", "remove"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(list(Group)),
        st.one_of(st.none(), st.frozensets(st.sampled_from(["BTC", "ETH", "SOL"]), min_size=1)),
    ),
    max_size=30,
)


@given(ops)
def test_receivers_always_match_the_subscriptions(
    sequence: list[tuple[str, str, Group, frozenset[str] | None]],
) -> None:
    idx: SubscriptionIndex[str] = SubscriptionIndex()
    for op, client, group, symbols in sequence:
        if op == "sub":
            idx.subscribe(client, Subscription(group, symbols if group is Group.PRICES else None))
        elif op == "unsub":
            idx.unsubscribe(client, group)
        else:
            idx.remove(client)
    for group in DATA_GROUPS:
        for symbol in ("BTC", "ETH", "SOL"):
            got = list(idx.receivers(group, symbol))
            assert len(got) == len(set(got))
            expected = set()
            for client, subs in idx.by_client.items():
                for sub in subs.values():
                    if sub.group is Group.ALL or (
                        sub.group is group and (sub.symbols is None or symbol in sub.symbols)
                    ):
                        expected.add(client)
            assert set(got) == expected
    model: dict[Group, int] = {}
    for subs in idx.by_client.values():
        for g in subs:
            model[g] = model.get(g, 0) + 1
    assert idx.group_counts() == model
