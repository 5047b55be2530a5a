"""A real ws-edge and the registry, in-process, on a real nats-server: session reconciliation.

Edge reports carry counters only (their size does not depend on the number of sessions); a
session event JetStream did not store makes the registry ask the edge for its session list.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect

from pricewire_common.encoding import dumps
from pricewire_common.testing import NatsServer
from pricewire_contracts import (
    ClientType,
    EdgeSessionList,
    EdgeSessionsRequest,
    SubjectCatalog,
)
from pricewire_edge.app import EdgeApp
from pricewire_edge.connection import Connection
from pricewire_edge.limits import LimitsSettings
from pricewire_edge.settings import EdgeSettings
from pricewire_registry.service import RegistryService
from pricewire_registry.settings import RegistrySettings

SUBJECTS = SubjectCatalog("pricewire")
NATS_MAX_PAYLOAD = 1024 * 1024


async def eventually(check: Callable[[], bool | Awaitable[bool]], *, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def reconciliations(reason: str, outcome: str = "done") -> float:
    value = REGISTRY.get_sample_value(
        "pricewire_registry_reconciliations_total", {"reason": reason, "outcome": outcome}
    )
    return value or 0.0


def closed_by(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "pricewire_registry_sessions_closed_total", {"reason": reason}
    )
    return value or 0.0


def edge_settings(server: NatsServer, edge_id: str, **extra: Any) -> EdgeSettings:
    return EdgeSettings(
        port=0,
        nats_url=server.url,
        instance_id=edge_id,
        report_interval_s=0.3,
        session_commit_s=0.1,
        **extra,
    )


@pytest_asyncio.fixture
async def registry(nats_server: NatsServer) -> AsyncIterator[RegistryService]:
    service = RegistryService(
        RegistrySettings(
            nats_url=nats_server.url,
            report_interval_s=0.3,
            sweep_interval_s=0.1,
            dev_mode=True,
            instance_id="registry-test",
        )
    )
    await service.start()
    yield service
    await service.stop()


async def test_a_close_event_jetstream_did_not_store_is_reconciled_through_the_edges_list(
    nats_server: NatsServer, nats_client: Any, registry: RegistryService
) -> None:
    first_before = reconciliations("first_report")
    lost_before = reconciliations("unconfirmed_events")
    edge = EdgeApp(edge_settings(nats_server, "edge-lossy"))
    await edge.start()
    try:
        await eventually(edge.ready)
        kept_ws = await connect(f"ws://127.0.0.1:{edge.port}/ws")
        lost_ws = await connect(f"ws://127.0.0.1:{edge.port}/ws")
        kept = json.loads(await kept_ws.recv())["session_id"]
        lost = json.loads(await lost_ws.recv())["session_id"]
        store = registry.store
        assert store is not None
        await eventually(lambda: store.live_on("edge-lossy") == {kept, lost})
        # the first report since the registry started is reconciled once (nothing to close)
        await eventually(lambda: reconciliations("first_report") > first_before)
        assert store.live_on("edge-lossy") == {kept, lost}

        # JetStream stops storing session closes: the close of `lost` goes nowhere
        js = nats_client.jetstream()
        config = (await js.stream_info(SUBJECTS.sessions_stream)).config
        config.subjects = [SUBJECTS.session_opened, SUBJECTS.session_activity]
        await js.update_stream(config)
        await lost_ws.close()
        await eventually(lambda: edge.ledger.unconfirmed == 1)
        config.subjects = [SUBJECTS.sessions]
        await js.update_stream(config)
        assert edge.ledger.published == 3  # two opens, one close

        # the next report says one event is unconfirmed: the registry asks, and closes it
        await eventually(lambda: store.live_on("edge-lossy") == {kept})
        record = next(r for r in store.records() if r.session_id == lost)
        assert record.close_reason == "not_listed"
        assert reconciliations("unconfirmed_events") == lost_before + 1
        await asyncio.sleep(1.0)  # three more reports: no further reconciliation
        assert reconciliations("unconfirmed_events") == lost_before + 1
        assert store.live_on("edge-lossy") == {kept}
        await kept_ws.close()
        await eventually(lambda: not store.live_on("edge-lossy"))
    finally:
        await edge.stop()


def resident(edge: EdgeApp, client_type: ClientType = ClientType.BROWSER) -> Connection:
    """A session held by the edge, without a socket: what ``_open`` records, nothing more."""
    conn = Connection.__new__(Connection)
    conn.session_id = str(uuid.uuid4())
    conn.client_type = client_type
    conn.committed = False
    conn.user = None
    conn.auth = None
    conn.client_ip = "127.0.0.1"
    conn.connected_at = conn.last_activity = time.time()
    conn.last_seen = time.monotonic()
    edge.connections.add(conn)
    edge.by_session[conn.session_id] = conn
    edge.client_types[client_type] += 1
    return conn


async def test_an_edge_with_100000_sessions_reports_in_a_few_hundred_bytes_and_stays_alive(
    nats_server: NatsServer, nats_client: Any, registry: RegistryService
) -> None:
    quiet = LimitsSettings(ping_interval_s=3600, idle_timeout_s=3600)
    edge = EdgeApp(edge_settings(nats_server, "edge-big", heartbeat_interval_s=3600, limits=quiet))
    residents = [resident(edge) for _ in range(100_000)]
    report = dumps(edge.report())
    assert len(report) < 4096, len(report)
    # what the report used to carry: every session id, past NATS's max_payload
    assert len(dumps([c.session_id for c in residents])) > NATS_MAX_PAYLOAD

    first_before = reconciliations("first_report")
    closed_before = closed_by("not_listed") + closed_by("edge_lost")
    await edge.start()
    try:
        await eventually(edge.ready)
        committed = residents[:1000]
        for conn in committed:  # the registry learns these through real session events
            edge.commit_session(conn)
        store = registry.store
        assert store is not None
        expected = {c.session_id for c in committed}
        await eventually(lambda: store.live_on("edge-big") == expected, within=60)
        # its first report since the registry started: the registry pages through 100,000 ids
        await eventually(lambda: reconciliations("first_report") > first_before, within=30)

        # reports arrive on the real subject; the edge stays alive, its sessions stay live
        seen: list[int] = []

        async def count(msg: Any) -> None:
            seen.append(len(msg.data))

        sub = await nats_client.subscribe(SUBJECTS.edge_report("edge-big"), cb=count)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert registry.liveness.alive("edge-big", time.monotonic())
            await asyncio.sleep(0.1)
        await sub.unsubscribe()
        assert len(seen) >= 4 and max(seen) < 4096
        assert store.live_on("edge-big") == expected
        assert closed_by("not_listed") + closed_by("edge_lost") == closed_before

        # the list the registry asks for: pages well under max_payload, every id once
        listed: list[str] = []
        after: str | None = None
        pages = 0
        while True:
            reply = await nats_client.request(
                SUBJECTS.edge_sessions("edge-big"),
                dumps(EdgeSessionsRequest(after=after)),
                timeout=5,
            )
            assert len(reply.data) < NATS_MAX_PAYLOAD // 2
            page = EdgeSessionList.model_validate_json(reply.data)
            listed += page.session_ids
            pages += 1
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert pages == 10
        assert listed == sorted(c.session_id for c in residents)
        assert page.session_events == 1000 and page.session_events_unconfirmed == 0
    finally:
        for conn in residents:  # no socket to close: take them out before the drain
            edge.connections.discard(conn)
            edge.by_session.pop(conn.session_id, None)
        await edge.stop()
