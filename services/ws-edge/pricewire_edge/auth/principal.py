"""Who a connection acts as: :class:`Principal`, a subject and the groups it may receive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pricewire_contracts import DATA_GROUPS, Group

__all__ = ["EVERY_GROUP", "Principal"]

#: Every group, :attr:`Group.ALL` included: what an unrestricted principal holds.
EVERY_GROUP: frozenset[Group] = frozenset(Group)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is connected and which groups they may receive.

    ``groups`` holds :attr:`Group.ALL` only when every data group is allowed.
    """

    subject: str | None
    groups: frozenset[Group]
    expires_at: datetime | None = None
    anonymous: bool = False

    @classmethod
    def anonymous_principal(cls) -> Principal:
        """An unauthenticated client in ``optional`` mode (or with auth ``off``): every group.

        The same (immutable) instance every time: it is asked for at every ``subscribe``.
        """
        return _ANONYMOUS

    def allows(self, group: Group) -> bool:
        return group in self.groups

    def grant(self, group: Group) -> frozenset[Group]:
        """The data groups a subscription to ``group`` delivers: ``all`` is every allowed one."""
        if group is Group.ALL:
            return self.groups.intersection(DATA_GROUPS)
        return frozenset({group}) & self.groups


_ANONYMOUS = Principal(subject=None, groups=EVERY_GROUP, anonymous=True)
