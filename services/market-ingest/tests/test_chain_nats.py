"""Chain polls on a real nats-server, against the simulator over real HTTP: each poll of an RPC
node publishes the chain's ``ChainStatus`` on ``chain.<chain>``, the chain stream keeps the last
one of every chain, and the health events carry ``feeds`` and the provider's own head."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from pricewire_common.httpserver import HttpServer
from pricewire_common.streams import StreamLimits, ensure_streams
from pricewire_common.testing import free_port
from pricewire_contracts import ChainStatus, ProviderHealth
from pricewire_ingest.catalog import Catalog
from pricewire_ingest.engine import IngestEngine
from pricewire_ingest.poller import HttpFetcher
from pricewire_ingest.service import NatsPublisher, collect_keys
from pricewire_ingest.settings import IngestSettings
from pricewire_ingest.simulator.server import create_app


@pytest.fixture
async def simulator_url(simulator: Any) -> AsyncIterator[str]:
    server = HttpServer(create_app(simulator), host="127.0.0.1", port=free_port(), graceful_s=1)
    await server.start()
    yield f"http://127.0.0.1:{server.port}"
    simulator.closing.set()
    await server.stop()


async def test_chain_polls_publish_chain_status_on_nats(
    nats_server: Any, nats_client: Any, simulator_url: str, catalog: Catalog
) -> None:
    settings = IngestSettings(
        nats_url=nats_server.url, provider_base_url_override=simulator_url, request_timeout_s=3.0
    )
    subjects = settings.subjects
    js = nats_client.jetstream()
    await ensure_streams(js, subjects, StreamLimits(history_s=60))
    chains: list[tuple[str, ChainStatus]] = []
    health: list[ProviderHealth] = []

    async def on_chain(msg: Any) -> None:
        chains.append((msg.subject, ChainStatus.model_validate(orjson.loads(msg.data))))

    async def on_health(msg: Any) -> None:
        health.append(ProviderHealth.model_validate(orjson.loads(msg.data)))

    await nats_client.subscribe(subjects.chains, cb=on_chain)
    await nats_client.subscribe(subjects.provider_health_all, cb=on_health)
    await nats_client.flush()
    fetcher = HttpFetcher()
    engine = IngestEngine(
        settings,
        catalog,
        fetcher=fetcher,
        publisher=NatsPublisher(nats_client, subjects),
        keys=collect_keys(catalog, {}, simulated=False),
    )
    polled = ("publicnode_eth_mainnet", "ankr_eth", "ankr_bsc", "blockstream_esplora")
    try:
        for pid in polled:
            assert (await engine.poll(pid)).outcome == "ok", pid
        for _ in range(100):
            if len(chains) >= 4 and len(health) >= 4:
                break
            await asyncio.sleep(0.05)
    finally:
        await fetcher.aclose()
    assert [s for s, _ in chains] == [
        "pricewire.v1.chain.ethereum",
        "pricewire.v1.chain.ethereum",
        "pricewire.v1.chain.bsc",
        "pricewire.v1.chain.bitcoin",
    ]
    eth = chains[1][1]
    assert (eth.chain, eth.status, eth.providers) == ("ethereum", "ok", 2)
    assert eth.height >= 19_000_000 and eth.base_fee_gwei and eth.block_time
    assert chains[3][1].height >= 830_000 and chains[3][1].base_fee_gwei is None
    assert {h.provider_id: h.feeds for h in health} == {pid: ["chain"] for pid in polled}
    assert all(h.chain is not None and h.chain.behind >= 0 for h in health)
    # the stream keeps one message per chain: the last
    info = await js.stream_info(subjects.chain_stream)
    assert info.state.messages == 3
    last = await js.get_last_msg(subjects.chain_stream, subjects.chain("ethereum"))
    assert ChainStatus.model_validate(orjson.loads(last.data)) == eth
