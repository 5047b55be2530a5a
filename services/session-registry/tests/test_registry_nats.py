"""The registry in-process against a real nats-server; the edge's events published directly."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pricewire_common.encoding import dumps
from pricewire_common.testing import NatsServer
from pricewire_contracts import (
    ClientType,
    ConnectionStats,
    EdgeReport,
    EdgeSessionList,
    EdgeSessionsRequest,
    Group,
    SessionActivity,
    SessionClosed,
    SessionOpened,
    StatsMessage,
    SubjectCatalog,
)
from pricewire_registry.api import create_app
from pricewire_registry.service import RegistryService
from pricewire_registry.settings import RegistrySettings

SUBJECTS = SubjectCatalog("pricewire")
GUIDE_SESSION_FIELDS = {"session_id", "client_type", "connected_at", "last_activity"}


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def settings_for(server: NatsServer, **extra: Any) -> RegistrySettings:
    values: dict[str, Any] = {
        "nats_url": server.url,
        "report_interval_s": 0.5,
        "sweep_interval_s": 0.1,
        "dev_mode": True,
        "stats_timeout_s": 0.5,
    }
    values.update(extra)
    return RegistrySettings(**values)


@pytest_asyncio.fixture
async def registry(nats_server: NatsServer) -> AsyncIterator[RegistryService]:
    service = RegistryService(settings_for(nats_server))
    await service.start()
    yield service
    await service.stop()


def client_for(service: RegistryService) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(service)), base_url="http://registry"
    )


class Edge:
    """Publishes what a ws-edge publishes, straight onto NATS; :meth:`serve` answers the
    session-list request, ``page_size`` ids at a time."""

    def __init__(self, nc: Any, edge_id: str, interval: float = 0.5) -> None:
        self.js = nc.jetstream()
        self.nc = nc
        self.edge_id = edge_id
        self.interval = interval
        self.sessions: dict[str, ClientType] = {}
        self.sequence = 0
        self.unconfirmed = 0
        self.list_requests = 0
        self.page_size = 10_000

    async def serve(self) -> None:
        async def answer(msg: Any) -> None:
            self.list_requests += 1
            request = EdgeSessionsRequest.model_validate_json(msg.data)
            ids = sorted(s for s in self.sessions if request.after is None or s > request.after)
            page = ids[: self.page_size]
            listing = EdgeSessionList(
                edge_id=self.edge_id,
                boot_id="boot-1",
                session_events=0,
                session_events_unconfirmed=self.unconfirmed,
                session_ids=page,
                next_cursor=page[-1] if len(ids) > len(page) else None,
            )
            await msg.respond(dumps(listing))

        await self.nc.subscribe(SUBJECTS.edge_sessions(self.edge_id), cb=answer)
        await self.nc.flush()

    def lose_close(self, sid: str) -> None:
        """The session closes here, but its close event never reaches the stream."""
        self.sessions.pop(sid, None)
        self.unconfirmed += 1

    async def open(self, kind: ClientType = ClientType.BROWSER, *, sid: str | None = None) -> str:
        sid = sid or str(uuid.uuid4())
        self.sessions[sid] = kind
        event = SessionOpened(
            session_id=sid,
            edge_id=self.edge_id,
            client_type=kind,
            connected_at="2024-01-15T10:00:00",
        )
        await self.js.publish(SUBJECTS.session_opened, dumps(event))
        return sid

    async def resume(self, sid: str, kind: ClientType = ClientType.BROWSER) -> None:
        self.sessions[sid] = kind
        event = SessionOpened(
            session_id=sid,
            edge_id=self.edge_id,
            client_type=kind,
            connected_at="2024-01-15T10:01:00",
            resumed=True,
        )
        await self.js.publish(SUBJECTS.session_opened, dumps(event))

    async def close(self, sid: str) -> None:
        self.sessions.pop(sid, None)
        event = SessionClosed(session_id=sid, edge_id=self.edge_id, closed_at="2024-01-15T10:02:00")
        await self.js.publish(SUBJECTS.session_closed, dumps(event))

    async def activity(self, sid: str, at: str) -> None:
        event = SessionActivity(edge_id=self.edge_id, last_activity={sid: at})
        await self.js.publish(SUBJECTS.session_activity, dumps(event))

    async def report(self) -> None:
        self.sequence += 1
        report = EdgeReport(
            edge_id=self.edge_id,
            boot_id="boot-1",
            sequence=self.sequence,
            report_interval_s=self.interval,
            sent_at="2024-01-15T10:00:00",
            active_connections=len(self.sessions),
            total_sessions=len(self.sessions),
            messages_sent=0,
            messages_received=0,
            session_events_unconfirmed=self.unconfirmed,
        )
        await self.nc.publish(SUBJECTS.edge_report(self.edge_id), dumps(report))
        await self.nc.flush()


async def sessions_of(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await http.get("/api/sessions", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_get_sessions_answers_the_guides_shape_field_for_field(
    registry: RegistryService, nats_client: Any
) -> None:
    edge = Edge(nats_client, "edge-a")
    browser = await edge.open(ClientType.BROWSER)
    api = await edge.open(ClientType.API)
    async with client_for(registry) as http:

        async def both_listed() -> bool:
            return len((await sessions_of(http))["sessions"]) == 2

        await eventually(both_listed)
        body = await sessions_of(http)
        assert set(body) == {"sessions", "stats"}
        assert set(body["stats"]) == {"active_connections", "total_sessions"}
        assert body["stats"] == {"active_connections": 2, "total_sessions": 2}
        for sid, kind in ((browser, "browser"), (api, "api")):
            entry = body["sessions"][sid]
            assert set(entry) == GUIDE_SESSION_FIELDS
            assert entry["session_id"] == sid and entry["client_type"] == kind
            assert entry["connected_at"] == "2024-01-15T10:00:00"
        one = await http.get(f"/api/sessions/{browser}")
        assert one.status_code == 200
        assert one.json() == {**body["sessions"][browser], "edge_id": "edge-a"}


async def test_a_closed_session_leaves_the_list_and_is_404_but_stays_counted(
    registry: RegistryService, nats_client: Any
) -> None:
    edge = Edge(nats_client, "edge-a")
    sid = await edge.open()
    async with client_for(registry) as http:

        async def listed() -> bool:
            return sid in (await sessions_of(http))["sessions"]

        await eventually(listed)
        await edge.close(sid)

        async def gone() -> bool:
            return sid not in (await sessions_of(http))["sessions"]

        await eventually(gone)
        missing = await http.get(f"/api/sessions/{sid}")
        assert missing.status_code == 404 and "no live session" in missing.json()["detail"]
        assert (await sessions_of(http))["stats"] == {"active_connections": 0, "total_sessions": 1}
        assert (await http.get("/api/sessions/not-a-session")).status_code == 404


async def test_a_resumed_session_keeps_its_id_and_is_not_a_new_session(
    registry: RegistryService, nats_client: Any
) -> None:
    first, second = Edge(nats_client, "edge-a"), Edge(nats_client, "edge-b")
    sid = await first.open()
    await second.resume(sid)  # the client reconnected to another edge
    await first.close(sid)  # ... before the first edge noticed the drop
    async with client_for(registry) as http:

        async def on_b() -> bool:
            reply = await http.get(f"/api/sessions/{sid}")
            return reply.status_code == 200 and reply.json()["edge_id"] == "edge-b"

        await eventually(on_b)
        await asyncio.sleep(0.3)  # the late close of edge-a must not take it away
        assert (await http.get(f"/api/sessions/{sid}")).json()["edge_id"] == "edge-b"
        assert (await sessions_of(http))["stats"]["total_sessions"] == 1


async def test_activity_moves_last_activity(registry: RegistryService, nats_client: Any) -> None:
    edge = Edge(nats_client, "edge-a")
    sid = await edge.open()
    await edge.activity(sid, "2024-01-15T10:30:00")
    async with client_for(registry) as http:

        async def moved() -> bool:
            reply = await http.get(f"/api/sessions/{sid}")
            return (
                reply.status_code == 200 and reply.json()["last_activity"] == "2024-01-15T10:30:00"
            )

        await eventually(moved)


async def test_sessions_of_an_edge_that_stops_reporting_are_closed_within_three_intervals(
    registry: RegistryService, nats_client: Any
) -> None:
    dying, healthy = Edge(nats_client, "edge-dying"), Edge(nats_client, "edge-ok")
    lost = [await dying.open() for _ in range(3)]
    kept = await healthy.open()
    await dying.report()
    stop = asyncio.Event()

    async def keep_reporting() -> None:
        while not stop.is_set():
            await healthy.report()
            await asyncio.sleep(0.2)

    reporter = asyncio.create_task(keep_reporting())
    try:
        async with client_for(registry) as http:

            async def only_healthy_left() -> bool:
                return set((await sessions_of(http))["sessions"]) == {kept}

            await eventually(only_healthy_left)
            for sid in lost:
                assert (await http.get(f"/api/sessions/{sid}")).status_code == 404
            assert (await sessions_of(http))["stats"] == {
                "active_connections": 1,
                "total_sessions": 4,
            }
    finally:
        stop.set()
        await reporter


async def test_a_session_whose_close_was_lost_is_closed_once_the_edge_lists_its_sessions(
    registry: RegistryService, nats_client: Any
) -> None:
    edge = Edge(nats_client, "edge-a", interval=60)
    edge.page_size = 2  # the registry pages through the list
    await edge.serve()
    ghost = await edge.open()
    real = [await edge.open() for _ in range(4)]
    async with client_for(registry) as http:

        async def all_five() -> bool:
            return len((await sessions_of(http))["sessions"]) == 5

        await eventually(all_five)
        await edge.report()  # first report since the registry started: one reconciliation
        await eventually(lambda: _true(edge.list_requests == 3))  # 2 + 2 + 1 ids
        await edge.report()
        await edge.report()
        await asyncio.sleep(0.3)
        assert edge.list_requests == 3  # reports alone cost no list
        assert len((await sessions_of(http))["sessions"]) == 5

        edge.lose_close(ghost)
        await edge.report()

        async def only_real() -> bool:
            return set((await sessions_of(http))["sessions"]) == set(real)

        await eventually(only_real)
        assert edge.list_requests == 5  # 2 + 2 ids
        assert (await sessions_of(http))["stats"]["total_sessions"] == 5
        await edge.report()
        await asyncio.sleep(0.3)
        assert edge.list_requests == 5  # and no further list


async def test_an_edge_that_does_not_answer_is_asked_again_and_keeps_its_sessions(
    registry: RegistryService, nats_client: Any
) -> None:
    edge = Edge(nats_client, "edge-a", interval=60)
    sid = await edge.open()
    async with client_for(registry) as http:

        async def listed() -> bool:
            return sid in (await sessions_of(http))["sessions"]

        await eventually(listed)
        await edge.report()  # no responder: nothing is closed on a missing answer
        await asyncio.sleep(0.3)
        assert await listed()
        await edge.serve()
        await edge.report()
        await eventually(lambda: _true(edge.list_requests == 1))
        assert await listed()


async def _true(value: bool) -> bool:
    return value


async def test_a_restarted_registry_keeps_its_sessions_and_catches_up_on_missed_events(
    nats_server: NatsServer, nats_client: Any
) -> None:
    edge = Edge(nats_client, "edge-a", interval=60)
    first = RegistryService(settings_for(nats_server))
    await first.start()
    kept = await edge.open()
    closed = await edge.open()
    async with client_for(first) as http:

        async def both() -> bool:
            return len((await sessions_of(http))["sessions"]) == 2

        await eventually(both)
    await first.stop()

    # while no registry runs: one closes, one opens
    await edge.close(closed)
    late = await edge.open(ClientType.MOBILE)

    second = RegistryService(settings_for(nats_server))
    await second.start()
    try:
        async with client_for(second) as http:

            async def caught_up() -> bool:
                return set((await sessions_of(http))["sessions"]) == {kept, late}

            await eventually(caught_up)
            assert (await sessions_of(http))["stats"]["total_sessions"] == 3
    finally:
        await second.stop()


async def test_two_replicas_share_the_events_and_count_each_session_once(
    nats_server: NatsServer, nats_client: Any
) -> None:
    replicas = [RegistryService(settings_for(nats_server)) for _ in range(2)]
    for replica in replicas:
        await replica.start()
    try:
        edge = Edge(nats_client, "edge-a", interval=60)
        opened = [await edge.open() for _ in range(40)]
        for sid in opened[:10]:
            await edge.close(sid)
        for replica in replicas:
            async with client_for(replica) as http:

                async def settled(http: httpx.AsyncClient = http) -> bool:
                    body = await sessions_of(http)
                    return body["stats"] == {"active_connections": 30, "total_sessions": 40}

                await eventually(settled)
                assert set((await sessions_of(http))["sessions"]) == set(opened[10:])
    finally:
        for replica in replicas:
            await replica.stop()


async def test_paging_and_client_type_filter(registry: RegistryService, nats_client: Any) -> None:
    edge = Edge(nats_client, "edge-a", interval=60)
    ids = sorted([await edge.open(ClientType.API) for _ in range(7)])
    mobile = await edge.open(ClientType.MOBILE)
    async with client_for(registry) as http:

        async def all_in() -> bool:
            return len((await sessions_of(http))["sessions"]) == 8

        await eventually(all_in)
        seen: list[str] = []
        params: dict[str, Any] = {"client_type": "api", "limit": 3}
        while True:
            page = await sessions_of(http, **params)
            assert page["stats"]["active_connections"] == 8
            seen += list(page["sessions"])
            if "next_cursor" not in page:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == ids
        only_mobile = await sessions_of(http, client_type="mobile")
        assert list(only_mobile["sessions"]) == [mobile]
        bad = await http.get("/api/sessions", params={"cursor": "bogus!"})
        assert bad.status_code == 422 and "cursor" in bad.json()["detail"]
        bad = await http.get("/api/sessions", params={"limit": 0})
        assert bad.status_code == 422 and "limit" in bad.json()["detail"]
        bad = await http.get("/api/sessions", params={"client_type": "robot"})
        assert bad.status_code == 422 and "client_type" in bad.json()["detail"]


async def test_session_stats_are_the_stats_services_answer(
    registry: RegistryService, nats_client: Any
) -> None:
    data = ConnectionStats(
        active_connections=15,
        total_sessions=23,
        messages_sent=1250,
        messages_received=450,
        client_types={ClientType.BROWSER: 12, ClientType.API: 2, ClientType.MOBILE: 1},
        subscriptions={Group.MARKET: 8, Group.PRICES: 10, Group.ALL: 15},
    )

    async def answer(msg: Any) -> None:
        await msg.respond(dumps(StatsMessage(data=data)))

    async with client_for(registry) as http:
        down = await http.get("/api/sessions/stats")
        assert down.status_code == 503 and "statistics unavailable" in down.json()["detail"]
        sub = await nats_client.subscribe(SUBJECTS.stats_get, cb=answer)
        await nats_client.flush()

        async def answered() -> bool:
            # nats-server may say "no responders" for a moment after a fresh subscription
            return (await http.get("/api/sessions/stats")).status_code == 200

        await eventually(answered)
        reply = await http.get("/api/sessions/stats")
        await sub.unsubscribe()
    assert reply.status_code == 200
    assert reply.json() == {
        "active_connections": 15,
        "total_sessions": 23,
        "messages_sent": 1250,
        "messages_received": 450,
        "client_types": {"browser": 12, "api": 2, "mobile": 1},
        "subscriptions": {"market": 8, "prices": 10, "all": 15},
    }


async def test_broadcast_publishes_the_raw_message_on_its_groups_subject_once(
    registry: RegistryService, nats_client: Any
) -> None:
    received: list[tuple[str, Any]] = []

    async def keep(msg: Any) -> None:
        received.append((msg.subject, json.loads(msg.data)))

    await nats_client.subscribe(SUBJECTS.broadcasts, cb=keep)
    await nats_client.flush()
    message = {"type": "notification", "text": "سیستم به‌روز شد"}
    async with client_for(registry) as http:
        reply = await http.post("/api/broadcast", json={"message": message, "group": "all"})
        assert reply.status_code == 202
        assert reply.json()["group"] == "all"
        reply = await http.post(
            "/api/broadcast", json={"message": {"type": "n", "x": 1}, "group": "prices"}
        )
        assert reply.status_code == 202

    async def both_arrived() -> bool:
        return len(received) >= 2

    await eventually(both_arrived)
    await asyncio.sleep(0.2)
    assert received == [
        (SUBJECTS.broadcast(Group.ALL), message),
        (SUBJECTS.broadcast(Group.PRICES), {"type": "n", "x": 1}),
    ]


@pytest.mark.parametrize(
    ("token", "dev", "headers", "status"),
    [
        (None, False, {}, 403),
        ("s3cret", False, {}, 401),
        ("s3cret", False, {"Authorization": "Bearer nope"}, 401),
        ("s3cret", True, {}, 401),
        ("s3cret", False, {"Authorization": "Bearer s3cret"}, 202),
        (None, True, {}, 202),
    ],
)
async def test_broadcast_token_rules_over_http(
    nats_server: NatsServer, token: str | None, dev: bool, headers: dict[str, str], status: int
) -> None:
    service = RegistryService(settings_for(nats_server, broadcast_token=token, dev_mode=dev))
    await service.start()
    try:
        async with client_for(service) as http:
            body = {"message": {"type": "notification"}, "group": "news"}
            reply = await http.post("/api/broadcast", json=body, headers=headers)
    finally:
        await service.stop()
    assert reply.status_code == status, reply.text
    if status == 401:
        assert reply.headers["www-authenticate"] == "Bearer"
    if status >= 400:
        assert reply.json()["detail"]


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{oops", 400),
        (b'{"message": {"type": "x"}, "group": "everyone"}', 422),
        (b'{"message": {"no": "type"}, "group": "all"}', 422),
        (b'{"message": [], "group": "all"}', 422),
        (b'{"group": "all"}', 422),
        (b'{"message": {"type": "x", "pad": "' + b"p" * 70_000 + b'"}, "group": "all"}', 413),
    ],
)
async def test_every_malformed_broadcast_gets_its_4xx(
    registry: RegistryService, content: bytes, status: int
) -> None:
    async with client_for(registry) as http:
        reply = await http.post(
            "/api/broadcast", content=content, headers={"Content-Type": "application/json"}
        )
    assert reply.status_code == status
    assert reply.json()["detail"]


async def test_health_ready_metrics_and_openapi(registry: RegistryService) -> None:
    async with client_for(registry) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.get("/ready")).status_code == 200
        await http.get("/api/sessions")
        metrics = (await http.get("/metrics")).text
        assert (
            'pricewire_registry_http_request_duration_seconds_count{method="GET",route="/api/sessions",status="200"}'
            in metrics
        )
        spec = (await http.get("/openapi.json")).json()
        assert {
            "/api/sessions",
            "/api/sessions/stats",
            "/api/sessions/{session_id}",
            "/api/broadcast",
        } <= set(spec["paths"])
        assert (await http.get("/docs")).status_code == 200


async def test_the_registry_carries_on_after_a_nats_restart(
    nats_server: NatsServer, registry: RegistryService
) -> None:
    import nats

    before = nats.NATS()
    await before.connect(nats_server.url)
    kept = await Edge(before, "edge-a", interval=60).open()
    await before.close()
    async with client_for(registry) as http:

        async def listed(sid: str) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return sid in (await sessions_of(http))["sessions"]

            return check

        await eventually(await listed(kept))
        nats_server.kill()
        await asyncio.to_thread(nats_server.start)
        after = nats.NATS()
        await after.connect(nats_server.url)
        try:
            late = await Edge(after, "edge-a", interval=60).open()
            await eventually(await listed(late), within=60)
            assert kept in (await sessions_of(http))["sessions"]

            async def ready_again() -> bool:
                return (await http.get("/ready")).status_code == 200

            await eventually(ready_again, within=60)
        finally:
            await after.close()
