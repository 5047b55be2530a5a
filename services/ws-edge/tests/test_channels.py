"""A data group's shared batch (channels.py): one append per message, order kept per member.

No sockets: real :class:`Connection` objects with a transport that records what is written.
"""

from __future__ import annotations

import asyncio
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
