"""Market data is published through JetStream: delayed while the stream is away, never lost."""

from __future__ import annotations

import asyncio

import nats

from pricewire_common.streams import ensure_streams
from pricewire_common.testing import NatsServer
from pricewire_contracts import Group, SubjectCatalog
from pricewire_ingest.service import NatsPublisher

S = SubjectCatalog()


async def test_a_price_published_while_nats_is_away_lands_once_it_is_back(
    nats_server: NatsServer,
) -> None:
    nc = await nats.connect(nats_server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
    js = nc.jetstream()
    await ensure_streams(js, S)
    publisher = NatsPublisher(nc, S, retry_for_s=30)
    nats_server.kill()
    sending = asyncio.create_task(publisher.publish(S.price("BTC"), b'{"type":"price_update"}'))
    await asyncio.sleep(1.0)
    assert not sending.done()  # waiting for the stream, not dropped
    nats_server.start()
    await asyncio.wait_for(sending, 30)
    info = await js.stream_info(S.stream(Group.PRICES))
    assert info.state.messages == 1  # the tries made during the outage left no duplicate
    await nc.close()


async def test_a_retried_publish_is_stored_once_and_health_stays_on_core_nats(
    nats_client: nats.NATS,
) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, S)
    publisher = NatsPublisher(nats_client, S)
    for _ in range(3):
        await publisher.publish(S.market, b'{"type":"market_update","data":{}}')
    await publisher.publish(S.provider_health("coingecko"), b"{}")
    info = await js.stream_info(S.stream(Group.MARKET))
    assert info.state.messages == 1
