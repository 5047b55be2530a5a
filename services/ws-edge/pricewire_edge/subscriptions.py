"""Who receives what: the index from (group, symbol) to the clients that want it. Pure.

A client subscribes to groups, ``prices`` optionally narrowed to symbols; ``all`` means every
data group with every symbol. The index keeps, per data group, the set of clients that get the
whole group, and per symbol the clients that asked for that symbol only, so that finding the
receivers of one message is a set lookup, however many clients there are, and a client
subscribed both to ``prices`` and ``all`` is found once.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pricewire_contracts import DATA_GROUPS, Group

__all__ = ["Subscription", "SubscriptionIndex"]

C = TypeVar("C", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One group a client subscribed to; ``symbols=None`` means every symbol.

    ``only`` narrows ``all`` to the data groups the client may receive (its token's groups).
    """

    group: Group
    symbols: frozenset[str] | None = None
    max_rate_hz: float | None = None
    only: frozenset[Group] | None = None


@dataclass(slots=True)
class _Wants:
    whole: bool = False
    symbols: frozenset[str] = frozenset()


@dataclass
class SubscriptionIndex(Generic[C]):
    whole: dict[Group, set[C]] = field(default_factory=lambda: {g: set() for g in DATA_GROUPS})
    by_symbol: dict[str, set[C]] = field(default_factory=dict)
    by_client: dict[C, dict[Group, Subscription]] = field(default_factory=dict)
    #: clients per subscribed group, kept as it changes (a report must not walk every client)
    counts: dict[Group, int] = field(default_factory=lambda: dict.fromkeys(Group, 0))

    def subscribe(self, client: C, sub: Subscription) -> None:
        subs = self.by_client.get(client)
        if subs is None:
            # A client's first subscription (every client of a connect storm): nothing of it
            # is indexed yet, and a whole data group is one set to join.
            self.by_client[client] = {sub.group: sub}
            self.counts[sub.group] += 1
            if sub.group is not Group.ALL and sub.symbols is None:
                self.whole[sub.group].add(client)
            else:
                self._index(client)
            return
        self._unindex(client)
        if sub.group not in subs:
            self.counts[sub.group] += 1
        subs[sub.group] = sub
        self._index(client)

    def unsubscribe(self, client: C, group: Group) -> bool:
        """Remove one group; True if the client had it."""
        subs = self.by_client.get(client)
        if not subs or group not in subs:
            return False
        self._unindex(client)
        del subs[group]
        self.counts[group] -= 1
        self._index(client)
        return True

    def remove(self, client: C) -> None:
        self._unindex(client)
        for group in self.by_client.pop(client, {}):
            self.counts[group] -= 1

    def subscriptions(self, client: C) -> dict[Group, Subscription]:
        return dict(self.by_client.get(client, {}))

    def receivers(self, group: Group, symbol: str | None = None) -> Iterator[C]:
        """Every client that wants a message of ``group`` (about ``symbol``), each once."""
        whole = self.whole[group]
        yield from whole
        if symbol is not None and group is Group.PRICES:
            for client in self.by_symbol.get(symbol, ()):
                if client not in whole:
                    yield client

    def group_counts(self) -> dict[Group, int]:
        """Clients per group they subscribed to, as the guide's ``subscriptions`` counts them."""
        return {g: n for g, n in self.counts.items() if n}

    # -- internals -------------------------------------------------------------------------
    def _effective(self, client: C) -> dict[Group, _Wants]:
        subs = self.by_client.get(client, {})
        wants = {g: _Wants() for g in DATA_GROUPS}
        for sub in subs.values():
            groups = DATA_GROUPS if sub.group is Group.ALL else (sub.group,)
            for g in groups:
                if sub.only is not None and g not in sub.only:
                    continue
                if sub.group is Group.PRICES and sub.symbols is not None:
                    wants[g].symbols |= sub.symbols
                else:
                    wants[g].whole = True
        return wants

    def _index(self, client: C) -> None:
        for group, want in self._effective(client).items():
            if want.whole:
                self.whole[group].add(client)
            elif group is Group.PRICES:
                for symbol in want.symbols:
                    self.by_symbol.setdefault(symbol, set()).add(client)

    def _unindex(self, client: C) -> None:
        for group, want in self._effective(client).items():
            self.whole[group].discard(client)
            if group is Group.PRICES:
                for symbol in want.symbols:
                    bucket = self.by_symbol.get(symbol)
                    if bucket is not None:
                        bucket.discard(client)
                        if not bucket:
                            del self.by_symbol[symbol]
