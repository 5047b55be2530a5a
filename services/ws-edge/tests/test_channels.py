"""A data group's shared batch (channels.py): one append per message, order kept per member.

No sockets: real :class:`Connection` objects with a transport that records what is written.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, cast

from websockets.protocol import State

from pricewire_contracts import Group
from pricewire_edge.channels import Channel
from pricewire_edge.connection import Connection
from pricewire_edge.flusher import Flusher
from pricewire_edge.frame_keys import price_key
from pricewire_edge.limits import LimitsSettings


class Wire:
    """A transport that keeps every write."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(bytes(data))

    def writelines(self, items: list[bytes]) -> None:
        self.chunks.append(b"".join(items))

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class Owner:
    flusher: Flusher
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    send_buffer_bytes: int = 1 << 20
    backlog_messages: int = 100
    max_message_bytes: int = 1 << 16
    slow: set[Connection] = field(default_factory=set)

    def on_request(self, *_: Any) -> None: ...
    def on_message(self, *_: Any) -> None: ...
    def on_close(self, *_: Any) -> None: ...


def member(owner: Owner, channel: Channel) -> tuple[Connection, Wire]:
    conn = Connection(cast(Any, owner))
    wire = Wire()
    conn.transport = cast(Any, wire)
    conn.ws.state = State.OPEN
    channel.add(conn)
    return conn, wire


async def turn() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_one_append_per_message_and_one_write_per_member_per_turn() -> None:
    owner = Owner(Flusher(asyncio.get_running_loop()))
    channel = Channel(Group.PRICES)
    channel.flusher = owner.flusher
    members = [member(owner, channel) for _ in range(3)]
    for i in range(5):
        assert channel.publish(b"f%d" % i, price_key("BTC"), i) == 3
    assert channel.frames == [b"f0", b"f1", b"f2", b"f3", b"f4"]
    assert all(not conn.pending for conn, _ in members)
    await turn()
    for _, wire in members:
        assert wire.chunks == [b"f0f1f2f3f4"]


async def test_own_frames_keep_their_place_among_the_groups() -> None:
    owner = Owner(Flusher(asyncio.get_running_loop()))
    channel = Channel(Group.PRICES)
    channel.flusher = owner.flusher
    conn, wire = member(owner, channel)
    channel.publish(b"a", None, 1)
    conn.send_control(b"<reply>")
    channel.publish(b"b", None, 2)
    late = Connection(cast(Any, owner))
    late_wire = Wire()
    late.transport = cast(Any, late_wire)
    late.ws.state = State.OPEN
    late.send(b"<snapshot>")
    channel.add(late)  # joins mid-turn: only what is published from now on
    channel.publish(b"c", None, 3)
    await turn()
    assert wire.data == b"a<reply>bc"
    assert late_wire.data == b"<snapshot>c"


async def test_a_member_that_leaves_pauses_or_closes_keeps_what_came_before() -> None:
    owner = Owner(Flusher(asyncio.get_running_loop()))
    channel = Channel(Group.PRICES)
    channel.flusher = owner.flusher
    leaver, leaver_wire = member(owner, channel)
    paused, paused_wire = member(owner, channel)
    closed, closed_wire = member(owner, channel)
    channel.publish(b"a", price_key("BTC"), 1)
    channel.discard(leaver)
    paused.pause_writing()
    closed.close(1000)
    channel.publish(b"b", price_key("BTC"), 2)  # the paused one: conflated; the closed: nothing
    await turn()
    assert leaver_wire.data == b"a" and leaver not in channel and not leaver.channels
    assert paused_wire.data == b"a" and paused.latest[price_key("BTC")] == (2, b"b")
    assert closed_wire.data.startswith(b"a\x88")  # the Close frame follows a, and ends it
    assert closed_wire.data.count(b"b") == 0
    paused.resume_writing()
    channel.publish(b"c", price_key("BTC"), 3)
    await turn()
    assert paused_wire.data.endswith(b"bc") and paused in channel.fast


class SlowWire(Wire):
    """A write that takes ``cost_s`` (a syscall to a busy peer), to make a round measurable."""

    def __init__(self, cost_s: float) -> None:
        super().__init__()
        self.cost_s = cost_s
        self.at: list[float] = []  # the loop clock at each write
        self.wrote = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.at.append(asyncio.get_running_loop().time())
        time.sleep(self.cost_s)
        super().write(data)
        self.wrote.set()

    async def writes(self, n: int) -> None:
        """Until ``n`` writes were made (a paced round comes on a timer)."""
        async with asyncio.timeout(5):
            while len(self.chunks) < n:
                self.wrote.clear()
                await self.wrote.wait()

    def writelines(self, items: list[bytes]) -> None:
        self.write(b"".join(items))


def paced_member(max_wait_s: float, cost_s: float) -> tuple[Flusher, Channel, Connection, SlowWire]:
    flusher = Flusher(asyncio.get_running_loop(), max_wait_s=max_wait_s)
    channel = Channel(Group.PRICES)
    channel.flusher = flusher
    conn = Connection(cast(Any, Owner(flusher)))
    wire = SlowWire(cost_s)
    conn.transport = cast(Any, wire)
    conn.ws.state = State.OPEN
    channel.add(conn)
    return flusher, channel, conn, wire


async def test_under_load_the_next_round_waits_as_long_as_the_last_took_and_carries_more() -> None:
    _, channel, conn, wire = paced_member(max_wait_s=0.05, cost_s=0.02)
    channel.publish(b"a", None, 1)
    await turn()
    assert wire.chunks == [b"a"]  # a quiet group: written in the turn it was published
    round_ended = asyncio.get_running_loop().time()
    channel.publish(b"b", None, 2)  # right after a round of 20 ms: paced
    await turn()
    assert wire.chunks == [b"a"]
    channel.publish(b"c", None, 3)
    conn.send_control(b"<pong>")  # control is never paced: written now, after what came before
    await turn()
    assert wire.chunks == [b"a", b"bc<pong>"]
    channel.publish(b"d", None, 4)
    channel.publish(b"e", None, 5)
    await wire.writes(3)
    assert wire.chunks[2] == b"de"  # one fuller write, not before the last round's length
    assert wire.at[2] >= round_ended + 0.02 - 0.002  # (the loop clock counts in ms)


async def test_pacing_waits_at_most_max_wait_s_and_is_off_at_zero() -> None:
    for max_wait_s in (0.005, 0.0):
        flusher, channel, _, wire = paced_member(max_wait_s=max_wait_s, cost_s=0.03)
        channel.publish(b"a", None, 1)
        await turn()
        # the round took 30 ms; the next may start at most max_wait_s after it ended
        ended = asyncio.get_running_loop().time()
        assert flusher._channels_due <= ended + max_wait_s + 0.002
        channel.publish(b"b", None, 2)
        await turn()
        assert wire.chunks == ([b"a"] if max_wait_s else [b"a", b"b"])
        await wire.writes(2)
        assert wire.chunks == [b"a", b"b"]
