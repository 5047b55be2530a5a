"""The stats service in-process against a real nats-server; edges' reports published directly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest_asyncio

from pricewire_common.encoding import dumps
from pricewire_common.testing import NatsServer
from pricewire_contracts import (
    ClientType,
    EdgeReport,
    Group,
    ProviderHealth,
    StatsRequest,
    SubjectCatalog,
)
from pricewire_stats.app import create_app
from pricewire_stats.service import StatsService
from pricewire_stats.settings import StatsSettings

SUBJECTS = SubjectCatalog("pricewire")
GUIDE_STATS_FIELDS = {
    "active_connections",
    "total_sessions",
    "messages_sent",
    "messages_received",
    "client_types",
    "subscriptions",
}


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def settings_for(server: NatsServer, **extra: Any) -> StatsSettings:
    values: dict[str, Any] = {
        "nats_url": server.url,
        "stats_interval_s": 60,
        "provider_stats_interval_s": 60,
        "persist_interval_s": 0.1,
    }
    values.update(extra)
    return StatsSettings(**values)


@pytest_asyncio.fixture
async def stats(nats_server: NatsServer) -> AsyncIterator[StatsService]:
    service = StatsService(settings_for(nats_server))
    await service.start()
    yield service
    await service.stop()


def report(edge: str, boot: str = "b1", seq: int = 1, **counts: Any) -> EdgeReport:
    values: dict[str, Any] = {
        "edge_id": edge,
        "boot_id": boot,
        "sequence": seq,
        "report_interval_s": 5.0,
        "sent_at": "2024-01-15T10:00:00",
        "active_connections": 0,
        "total_sessions": 0,
        "messages_sent": 0,
        "messages_received": 0,
    }
    values.update(counts)
    return EdgeReport(**values)


async def publish_report(nc: Any, rep: EdgeReport) -> None:
    await nc.publish(SUBJECTS.edge_report(rep.edge_id), dumps(rep))
    await nc.flush()


async def ask(nc: Any, request: StatsRequest | None = None, raw: bytes | None = None) -> Any:
    payload = raw if raw is not None else dumps(request or StatsRequest())
    reply = await nc.request(SUBJECTS.stats_get, payload, timeout=5)
    return json.loads(reply.data)


async def test_get_stats_sums_every_live_edge_in_the_guides_shape(
    stats: StatsService, nats_client: Any
) -> None:
    await publish_report(
        nats_client,
        report(
            "edge-a",
            active_connections=2,
            total_sessions=4,
            messages_sent=100,
            messages_received=7,
            client_types={ClientType.BROWSER: 2},
            subscriptions={Group.MARKET: 2},
        ),
    )
    await publish_report(
        nats_client,
        report(
            "edge-b",
            active_connections=1,
            total_sessions=1,
            messages_sent=10,
            messages_received=3,
            client_types={ClientType.API: 1},
            subscriptions={Group.ALL: 1},
        ),
    )

    async def both_counted() -> bool:
        return (await ask(nats_client))["data"]["active_connections"] == 3

    await eventually(both_counted)
    answer = await ask(nats_client)
    assert answer["type"] == "stats" and set(answer) == {"type", "data", "timestamp"}
    assert answer["data"] == {
        "active_connections": 3,
        "total_sessions": 5,
        "messages_sent": 110,
        "messages_received": 10,
        "client_types": {"browser": 2, "api": 1},
        "subscriptions": {"market": 2, "all": 1},
    }
    assert set(answer["data"]) == GUIDE_STATS_FIELDS


async def test_the_askers_own_report_counts_its_new_client_at_once(
    stats: StatsService, nats_client: Any
) -> None:
    await publish_report(nats_client, report("edge-a", active_connections=1, total_sessions=1))
    asking = report("edge-a", seq=2, active_connections=2, total_sessions=2)
    answer = await ask(nats_client, StatsRequest(edge_id="edge-a", report=asking))
    assert answer["data"]["active_connections"] == 2
    assert answer["data"]["total_sessions"] == 2


async def test_an_unreadable_request_still_gets_the_numbers(
    stats: StatsService, nats_client: Any
) -> None:
    for raw in (b"", b"{not json", b'{"report": {"edge_id": 3}}'):
        answer = await ask(nats_client, raw=raw)
        assert answer["type"] == "stats" and set(answer["data"]) == GUIDE_STATS_FIELDS


async def test_stats_update_is_published_every_interval(
    nats_server: NatsServer, nats_client: Any
) -> None:
    updates: list[Any] = []

    async def keep(msg: Any) -> None:
        updates.append(json.loads(msg.data))

    await nats_client.subscribe(SUBJECTS.stats_update, cb=keep)
    await nats_client.flush()
    service = StatsService(settings_for(nats_server, stats_interval_s=0.2))
    await service.start()
    try:
        await publish_report(nats_client, report("edge-a", active_connections=4, total_sessions=4))

        async def counted() -> bool:
            return len(updates) >= 2 and updates[-1]["data"]["active_connections"] == 4

        await eventually(counted)
    finally:
        await service.stop()
    assert updates[-1]["type"] == "stats_update"
    assert set(updates[-1]) == {"type", "data", "timestamp"}
    assert set(updates[-1]["data"]) == GUIDE_STATS_FIELDS


async def test_totals_survive_a_stats_restart_and_an_edge_restart_adds_to_them(
    nats_server: NatsServer, nats_client: Any
) -> None:
    first = StatsService(settings_for(nats_server))
    await first.start()
    first_report = report("edge-a", total_sessions=40, messages_sent=1000, messages_received=300)

    async def counted() -> bool:
        # sent again each time: a report published in the instant the fresh service's
        # subscription is not yet effective in nats-server is lost (reports are idempotent)
        await publish_report(nats_client, first_report)
        return (await ask(nats_client))["data"]["total_sessions"] == 40

    await eventually(counted)
    await first.stop()

    second = StatsService(settings_for(nats_server))
    await second.start()
    try:

        async def answering() -> bool:
            # nats-server may say "no responders" for a moment after a fresh subscription
            try:
                await ask(nats_client)
            except Exception:
                return False
            return True

        await eventually(answering)
        data = (await ask(nats_client))["data"]
        assert (data["total_sessions"], data["messages_sent"], data["messages_received"]) == (
            40,
            1000,
            300,
        )
        # the edge restarts: its counters begin again at zero
        restarted = report(
            "edge-a", "b2", 0, active_connections=1, total_sessions=1, messages_sent=5
        )

        async def added() -> bool:
            await publish_report(nats_client, restarted)
            return (await ask(nats_client))["data"]["total_sessions"] == 41

        await eventually(added)
        data = (await ask(nats_client))["data"]
        assert data["messages_sent"] == 1005 and data["active_connections"] == 1
    finally:
        await second.stop()


async def test_provider_stats_summarises_provider_health(
    nats_server: NatsServer, nats_client: Any
) -> None:
    received: list[Any] = []

    async def keep(msg: Any) -> None:
        received.append(json.loads(msg.data))

    await nats_client.subscribe(SUBJECTS.provider_stats, cb=keep)
    service = StatsService(settings_for(nats_server, provider_stats_interval_s=0.2))
    await service.start()
    try:
        for pid, status, outcome, rate in (
            ("coingecko", "online", "ok", 100.0),
            ("binance", "online", "ok", 91.0),
            ("kraken", "offline", "timeout", 0.0),
        ):
            health = ProviderHealth(
                provider_id=pid,
                name=pid,
                category="market",
                outcome=outcome,  # type: ignore[arg-type]
                status=status,  # type: ignore[arg-type]
                success_rate=rate,
                checked_at="2024-01-15T10:00:00",
            )
            await nats_client.publish(SUBJECTS.provider_health(pid), dumps(health))
        await nats_client.flush()

        async def summarised() -> bool:
            return bool(received) and received[-1]["data"]["summary"]["total_providers"] == 3

        await eventually(summarised)
    finally:
        await service.stop()
    message = received[-1]
    assert message["type"] == "provider_stats"
    assert message["data"]["summary"] == {
        "total_providers": 3,
        "online": 2,
        "offline": 1,
        "overall_success_rate": 63.7,
        "rate_limited": 0,
        "disabled": 0,
    }
    assert [p["provider_id"] for p in message["data"]["providers"]] == [
        "binance",
        "coingecko",
        "kraken",
    ]


async def test_health_ready_and_metrics(stats: StatsService, nats_client: Any) -> None:
    await ask(nats_client)
    transport = httpx.ASGITransport(app=create_app(stats))
    async with httpx.AsyncClient(transport=transport, base_url="http://stats") as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.get("/ready")).status_code == 200
        metrics = (await http.get("/metrics")).text
    assert 'pricewire_stats_requests_total{with_report="false"}' in metrics


async def test_stats_carries_on_after_a_nats_restart(
    nats_server: NatsServer, stats: StatsService
) -> None:
    import nats

    nc = await nats.connect(nats_server.url)
    await publish_report(nc, report("edge-a", total_sessions=5))

    async def counted(nc: Any = nc) -> bool:
        return (await ask(nc))["data"]["total_sessions"] == 5

    await eventually(counted)
    await nc.close()
    nats_server.kill()
    await asyncio.to_thread(nats_server.start)
    nc = await nats.connect(nats_server.url)
    try:

        async def counted_again() -> bool:
            # like an edge, report again and again: a report sent before stats reconnects is lost
            await publish_report(nc, report("edge-a", seq=2, total_sessions=6))
            try:
                data = (await ask(nc))["data"]
            except Exception:  # stats is still reconnecting
                return False
            return bool(data["total_sessions"] == 6)

        await eventually(counted_again, within=60)
    finally:
        await nc.close()


async def test_provider_stats_rows_carry_feeds_and_chain_heads(
    nats_server: NatsServer, nats_client: Any
) -> None:
    from pricewire_contracts import ChainHeadReading

    received: list[Any] = []

    async def keep(msg: Any) -> None:
        received.append(json.loads(msg.data))

    await nats_client.subscribe(SUBJECTS.provider_stats, cb=keep)
    service = StatsService(settings_for(nats_server, provider_stats_interval_s=0.2))
    await service.start()
    head = ChainHeadReading(chain="ethereum", height=19_000_000, block_age_s=3.0)
    try:
        for pid, feeds, chain in (
            ("ankr_eth", ["chain"], head),
            ("kraken", ["prices"], None),
            ("rss_decrypt", ["news"], None),
        ):
            health = ProviderHealth(
                provider_id=pid,
                name=pid,
                category="rpc",
                outcome="ok",
                status="online",
                success_rate=100.0,
                checked_at="2024-01-15T10:00:00",
                feeds=feeds,  # type: ignore[arg-type]
                chain=chain,
            )
            await nats_client.publish(SUBJECTS.provider_health(pid), dumps(health))
        await nats_client.flush()

        mine = {"ankr_eth", "kraken", "rss_decrypt"}

        async def summarised() -> bool:  # other tests' providers may be there too
            return bool(received) and mine <= {
                p["provider_id"] for p in received[-1]["data"]["providers"]
            }

        await eventually(summarised)
    finally:
        await service.stop()
    rows = {
        p["provider_id"]: p for p in received[-1]["data"]["providers"] if p["provider_id"] in mine
    }
    assert {pid: row["feeds"] for pid, row in rows.items()} == {
        "ankr_eth": ["chain"],
        "kraken": ["prices"],
        "rss_decrypt": ["news"],
    }
    assert rows["ankr_eth"]["chain"]["chain"] == "ethereum"
    assert rows["ankr_eth"]["chain"]["height"] == 19_000_000
    assert rows["kraken"].get("chain") is None
