"""Work done to every connection once per period, spread over the period a slice at a time.

The server's pings (every ``ping_interval_s``) and the heartbeats (every
``heartbeat_interval_s``) used to go to every connection in one loop turn: at 2,000 clients
that is 2,000 ``send()`` calls, ~16 ms of the core during which a tick of prices waits, which is
the whole p99 budget. :class:`Rota` deals connections round-robin into :data:`SLOTS` slots as
they open; :meth:`Rota.every` visits one slot every ``period / SLOTS``, so each connection still
gets its ping or heartbeat once per period (a new one within one period of opening), and a burst
is a twentieth of the connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["SLOTS", "Rota"]

SLOTS = 20


class _Member(Protocol):
    rota: int  # its slot, set by Rota.add (-1: none)


M = TypeVar("M", bound=_Member)


class Rota(Generic[M]):
    """The open connections, dealt into :data:`SLOTS` slots."""

    def __init__(self) -> None:
        self.slots: list[set[M]] = [set() for _ in range(SLOTS)]
        self._next = 0

    def add(self, member: M) -> None:
        member.rota = self._next
        self.slots[self._next].add(member)
        self._next = (self._next + 1) % SLOTS

    def discard(self, member: M) -> None:
        if member.rota >= 0:
            self.slots[member.rota].discard(member)
            member.rota = -1

    async def every(self, period_s: float, work: Callable[[list[M]], None]) -> None:
        """Forever: ``work`` on one slot's members every ``period_s / SLOTS``."""
        step = period_s / SLOTS
        slot = 0
        while True:
            await asyncio.sleep(step)
            members = list(self.slots[slot])
            if members:
                work(members)
            slot = (slot + 1) % SLOTS
