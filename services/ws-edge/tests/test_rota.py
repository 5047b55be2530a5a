"""Per-connection periodic work (pings, heartbeats, deadline checks) is spread over its period."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from pricewire_edge.rota import SLOTS, Rota


@dataclass(eq=False)
class Member:
    rota: int = -1


async def test_each_member_once_per_period_a_slice_at_a_time() -> None:
    rota: Rota[Member] = Rota()
    members = [Member() for _ in range(200)]
    for member in members:
        rota.add(member)
    gone = members.pop()
    rota.discard(gone)
    assert gone.rota == -1
    visits: list[list[Member]] = []
    task = asyncio.create_task(rota.every(0.2, visits.append))
    await asyncio.sleep(0.2 * 1.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    first_period = [m for batch in visits[:SLOTS] for m in batch]
    assert sorted(map(id, first_period)) == sorted(map(id, members))  # each once, not `gone`
    assert max(len(batch) for batch in visits) <= -(-200 // SLOTS)
