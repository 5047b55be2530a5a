from __future__ import annotations

import asyncio

from pricewire_common.natsconn import NatsLink
from pricewire_common.settings import ServiceSettings
from pricewire_common.testing import NatsServer


async def test_link_connects_and_reports_ready(nats_server: NatsServer) -> None:
    link = NatsLink(ServiceSettings(nats_url=nats_server.url), name="test")
    nc = await link.connect()
    assert link.ready(max_outage_s=1)
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_msg(msg: object) -> None:
        got.set_result(msg.data)  # type: ignore[attr-defined]

    await nc.subscribe("x", cb=on_msg)
    await nc.publish("x", b"hello")
    assert await asyncio.wait_for(got, 5) == b"hello"
    await link.close()


async def test_link_survives_a_broker_restart_and_readiness_follows_the_outage(
    nats_server: NatsServer,
) -> None:
    link = NatsLink(ServiceSettings(nats_url=nats_server.url, nats_reconnect_wait_s=0.1), name="t")
    await link.connect()
    nats_server.kill()
    for _ in range(100):
        if not link.is_connected:
            break
        await asyncio.sleep(0.05)
    assert not link.is_connected
    assert link.ready(max_outage_s=60)  # a short outage is tolerated
    assert not link.ready(max_outage_s=0)  # past the limit the pod reports not ready
    nats_server.start()
    for _ in range(200):
        if link.is_connected:
            break
        await asyncio.sleep(0.05)
    assert link.is_connected
    await link.close()


async def test_readiness_holds_from_the_first_moment_of_an_outage(nats_server: NatsServer) -> None:
    """Between the client seeing the drop and its disconnected callback, the link is still
    within its tolerated outage: a /ready probe in that window must not fail (it did: 503)."""
    link = NatsLink(ServiceSettings(nats_url=nats_server.url, nats_reconnect_wait_s=0.1), name="t")
    await link.connect()
    nats_server.kill()
    seen: list[bool] = []
    for _ in range(20_000):
        if not link.is_connected:
            seen.append(link.ready(max_outage_s=60))
            if len(seen) > 50:
                break
        await asyncio.sleep(0)
    assert seen and all(seen)
    nats_server.start()
    await link.close()
