"""AckedPublisher against a real nats-server: every message acknowledged, in order, and the
batches it makes while acknowledgements are outstanding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from pricewire_common.natsconn import NatsLink
from pricewire_common.settings import ServiceSettings
from pricewire_common.testing import NatsServer
from pricewire_edge.js_publisher import AckedPublisher

from .conftest import wait_for


@pytest_asyncio.fixture
async def link(nats_server: NatsServer) -> AsyncIterator[NatsLink]:
    link = NatsLink(ServiceSettings(nats_url=nats_server.url), name="test")
    nc = await link.connect()
    await nc.jetstream().add_stream(name="T", subjects=["t.>"])
    yield link
    await nc.close()


class Acks:
    def __init__(self) -> None:
        self.results: list[tuple[int, bool, str]] = []

    def done(self, i: int) -> object:
        return lambda ok, why: self.results.append((i, ok, why))


async def stored(link: NatsLink) -> list[bytes]:
    js = link.nc.jetstream()
    info = await js.stream_info("T")
    return [(await js.get_msg("T", seq)).data or b"" for seq in range(1, info.state.messages + 1)]


async def test_a_quiet_publisher_does_not_wait_for_a_batch(link: NatsLink) -> None:
    publisher = AckedPublisher(link, ack_timeout_s=5.0, batch_wait_s=30.0)
    acks = Acks()
    publisher.publish("t.a", b"0", acks.done(0))  # nothing in flight: out at the end of the turn
    await wait_for(lambda: bool(acks.results), timeout=10.0)  # far less than batch_wait_s
    assert acks.results == [(0, True, "")]
    assert publisher.batches == 1 and publisher.outstanding == 0


async def test_messages_queued_while_acknowledgements_are_outstanding_go_out_together(
    link: NatsLink,
) -> None:
    publisher = AckedPublisher(link, ack_timeout_s=5.0, batch_wait_s=0.5)
    acks = Acks()
    publisher.publish("t.a", b"0", acks.done(0))
    for _ in range(1000):  # loop turn by loop turn, until the first batch went
        if publisher.batches:
            break
        await asyncio.sleep(0)
    # handed to the client, not written yet: its acknowledgement cannot be back
    assert publisher.outstanding == 1 and not acks.results
    for i in range(1, 21):  # one message per loop turn, as a connect storm makes them
        publisher.publish(f"t.{i % 3}", str(i).encode(), acks.done(i))
        await asyncio.sleep(0)
    await wait_for(lambda: len(acks.results) == 21)
    assert publisher.batches == 2  # the first alone, the twenty others in one write
    assert sorted(acks.results) == [(i, True, "") for i in range(21)]
    assert await stored(link) == [str(i).encode() for i in range(21)]  # in the order given


async def test_without_a_stream_each_message_fails_with_the_status(link: NatsLink) -> None:
    publisher = AckedPublisher(link, ack_timeout_s=5.0, batch_wait_s=0.0)
    acks = Acks()
    for i in range(3):
        publisher.publish("nostream.x", b"x", acks.done(i))
    await wait_for(lambda: len(acks.results) == 3)
    assert [(i, ok) for i, ok, _ in sorted(acks.results)] == [(0, False), (1, False), (2, False)]
    assert all("503" in why for _, _, why in acks.results)
