"""session-registry, stats and two ws-edges as real processes on one real nats-server.

Clients are real WebSocket clients (the ``websockets`` library, as in the guide); the REST API
is called over real HTTP. Timings are generous and every wait polls for its condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from pricewire_common.testing import NatsServer, ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

REPORT_INTERVAL_S = 0.5
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
GUIDE_STATS = {
    "active_connections",
    "total_sessions",
    "messages_sent",
    "messages_received",
    "client_types",
}


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 60.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {within}s")
        await asyncio.sleep(0.1)


class Deployment:
    """Starts the services as processes; every one still running is stopped at the end."""

    def __init__(self, nats: NatsServer, logs: Path) -> None:
        self.nats = nats
        self.logs = logs
        self.procs: list[ServiceProcess] = []

    async def start(self, module: str, name: str, **env: str) -> ServiceProcess:
        proc = ServiceProcess(
            module,
            env={
                "PRICEWIRE_NATS_URL": self.nats.url,
                "PRICEWIRE_INSTANCE_ID": name,
                "PRICEWIRE_REPORT_INTERVAL_S": str(REPORT_INTERVAL_S),
                **env,
            },
            log_file=self.logs / f"{name}.log",
        )
        self.procs.append(proc)
        await asyncio.to_thread(proc.start, timeout_s=90)
        return proc

    async def registry(self, name: str = "registry-1", **env: str) -> ServiceProcess:
        return await self.start(
            "pricewire_registry",
            name,
            **{"PRICEWIRE_BROADCAST_TOKEN": "e2e-token", **env},
        )

    async def stats(self, name: str = "stats-1", **env: str) -> ServiceProcess:
        return await self.start(
            "pricewire_stats", name, **{"PRICEWIRE_STATS_INTERVAL_S": "1", **env}
        )

    async def edge(self, name: str) -> ServiceProcess:
        return await self.start(
            "pricewire_edge",
            name,
            PRICEWIRE_DRAIN_WINDOW_S="0",
            PRICEWIRE_SESSION_COMMIT_S="0.2",
        )

    async def restart(self, proc: ServiceProcess) -> int | None:
        """SIGTERM, wait for the exit code, start the same service again on the same port."""
        code = await asyncio.to_thread(proc.stop, 60)
        await asyncio.to_thread(proc.start, timeout_s=90)
        return code

    def stop_all(self) -> dict[str, int | None]:
        return {p.module + ":" + str(p.port): p.stop(60) for p in reversed(self.procs)}


@pytest_asyncio.fixture
async def deployment(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Deployment]:
    deployment = Deployment(nats_server, tmp_path)
    yield deployment
    codes = await asyncio.to_thread(deployment.stop_all)
    ours = {name: code for name, code in codes.items() if not name.startswith("pricewire_edge")}
    assert all(code in (0, None) for code in ours.values()), ours


class Client:
    """A WebSocket client that keeps everything it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, edge: ServiceProcess, *, user_agent: str | None = None) -> Client:
        kwargs: dict[str, Any] = {"open_timeout": 30}
        if user_agent is not None:
            kwargs["user_agent_header"] = user_agent
        ws = await connect(edge.url("/ws", scheme="ws"), **kwargs)
        client = cls(ws)
        welcome = await client.next_of("welcome")
        client.session_id = welcome["session_id"]
        return client

    session_id: str

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                self.received.append(json.loads(raw))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]

    async def next_of(self, kind: str, *, after: int = 0, within: float = 30.0) -> dict[str, Any]:
        async def arrived() -> bool:
            return len(self.of(kind)) > after

        await eventually(arrived, within=within, what=f"a {kind!r} message")
        return self.of(kind)[after]

    async def counted_online(self) -> int:
        """The online count once it counts this client: its initial stats_update or the next
        one (the stats service's periodic tick, every 1 s here, may come first, computed
        before this client connected)."""
        first = await self.next_of("stats_update")
        second = await self.next_of("stats_update", after=1)
        return max(first["data"]["active_connections"], second["data"]["active_connections"])

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def subscribe(self, group: str) -> None:
        seen = len(self.of("subscribed"))
        await self.send({"type": "subscribe", "group": group})
        await self.next_of("subscribed", after=seen)

    async def get_stats(self) -> dict[str, Any]:
        seen = len(self.of("stats")) + len(self.of("error"))
        await self.send({"type": "get_stats"})

        async def answered() -> bool:
            return len(self.of("stats")) + len(self.of("error")) > seen

        await eventually(answered, what="a get_stats answer")
        return [m for m in self.received if m.get("type") in ("stats", "error")][-1]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def get_json(url: str, **params: Any) -> tuple[int, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.get(url, params=params)
    return reply.status_code, reply.json()


async def test_two_edges_one_registry_one_stats_and_restarts_of_each(
    deployment: Deployment,
) -> None:
    registry = await deployment.registry()
    stats = await deployment.stats()
    edge_a = await deployment.edge("edge-a")
    edge_b = await deployment.edge("edge-b")
    clients: list[Client] = []
    try:
        # a new client learns the online count at once, counting itself (within its first two
        # stats_updates: the stats service's periodic tick, every 1 s here, may come first)
        first = await Client.open(edge_a, user_agent=BROWSER_UA)
        clients.append(first)
        assert await first.counted_online() == 1
        second = await Client.open(edge_a)
        clients.append(second)
        assert await second.counted_online() == 2
        # ... also when it is on another edge: the total is over both edges
        third = await Client.open(edge_b)
        clients.append(third)
        assert await third.counted_online() == 3

        stats_reply = await third.get_stats()
        assert stats_reply["type"] == "stats"
        assert stats_reply["data"]["active_connections"] == 3
        assert stats_reply["data"]["client_types"] == {"browser": 1, "api": 2}

        async def rest_counts_three() -> bool:
            # total_sessions follows once the edges commit the sessions and report again
            status, body = await get_json(registry.url("/api/sessions/stats"))
            return status == 200 and body["active_connections"] == body["total_sessions"] == 3

        await eventually(rest_counts_three, what="/api/sessions/stats counting both edges")
        status, body = await get_json(registry.url("/api/sessions/stats"))
        assert set(body) >= GUIDE_STATS and set(body) - GUIDE_STATS == {"subscriptions"}

        async def three_sessions() -> bool:
            status, body = await get_json(registry.url("/api/sessions"))
            return status == 200 and len(body["sessions"]) == 3

        await eventually(three_sessions, what="three sessions listed")
        status, listing = await get_json(registry.url("/api/sessions"))
        assert set(listing) == {"sessions", "stats"}
        assert listing["stats"] == {"active_connections": 3, "total_sessions": 3}
        assert listing["sessions"][first.session_id]["client_type"] == "browser"
        assert listing["sessions"][second.session_id]["client_type"] == "api"
        for sid, entry in listing["sessions"].items():
            assert set(entry) == {"session_id", "client_type", "connected_at", "last_activity"}
            assert entry["session_id"] == sid
        status, one = await get_json(registry.url(f"/api/sessions/{third.session_id}"))
        assert status == 200 and one["edge_id"] == "edge-b"

        # kill -9 of edge-b: its session leaves the registry and the counts
        edge_b.kill()
        await third.close()
        clients.remove(third)

        async def edge_b_gone() -> bool:
            status, body = await get_json(registry.url("/api/sessions"))
            return status == 200 and third.session_id not in body["sessions"]

        await eventually(edge_b_gone, what="edge-b's session removed")
        status, listing = await get_json(registry.url("/api/sessions"))
        assert set(listing["sessions"]) == {first.session_id, second.session_id}
        assert listing["stats"] == {"active_connections": 2, "total_sessions": 3}
        status, _ = await get_json(registry.url(f"/api/sessions/{third.session_id}"))
        assert status == 404

        async def stats_dropped_edge_b() -> bool:
            return (await first.get_stats()).get("data", {}).get("active_connections") == 2

        await eventually(stats_dropped_edge_b, what="stats dropping the vanished edge")
        before = (await first.get_stats())["data"]
        assert before["total_sessions"] == 3

        # restarting stats (SIGTERM) keeps the totals
        assert await deployment.restart(stats) == 0

        async def stats_answering() -> bool:
            # right after a restart NATS may briefly answer "no responders": an error reply
            return (await first.get_stats())["type"] == "stats"

        await eventually(stats_answering, what="stats answering after its restart")
        after = (await first.get_stats())["data"]
        assert after["total_sessions"] == 3
        assert after["messages_sent"] >= before["messages_sent"]
        assert after["messages_received"] >= before["messages_received"]
        assert after["active_connections"] == 2

        # so does a crash of stats (kill -9): the next reports bring the counts back
        stats.kill()
        await asyncio.to_thread(stats.start, timeout_s=90)

        async def totals_back() -> bool:
            reply = await first.get_stats()
            data = reply.get("data", {})
            return (
                reply["type"] == "stats"
                and data.get("total_sessions") == 3
                and data["messages_sent"] >= after["messages_sent"]
            )

        await eventually(totals_back, what="totals after a stats crash")

        # restarting the registry keeps the sessions
        assert await deployment.restart(registry) == 0
        status, listing = await get_json(registry.url("/api/sessions"))
        assert status == 200
        assert set(listing["sessions"]) == {first.session_id, second.session_id}
        assert listing["stats"] == {"active_connections": 2, "total_sessions": 3}

        # and a session that closes while the registry is down is still seen closed
        await asyncio.to_thread(registry.stop, 60)
        await second.close()
        clients.remove(second)
        await asyncio.to_thread(registry.start, timeout_s=90)

        async def second_gone() -> bool:
            status, body = await get_json(registry.url("/api/sessions"))
            return status == 200 and set(body["sessions"]) == {first.session_id}

        await eventually(second_gone, what="a close that happened while the registry was down")
    finally:
        for client in clients:
            await client.close()


async def test_broadcast_reaches_exactly_the_clients_of_its_group_once(
    deployment: Deployment,
) -> None:
    registry = await deployment.registry()
    await deployment.stats()
    edge_a = await deployment.edge("edge-a")
    edge_b = await deployment.edge("edge-b")
    market_a = await Client.open(edge_a)
    everything_b = await Client.open(edge_b)
    prices_a = await Client.open(edge_a)
    nothing_b = await Client.open(edge_b)
    clients = [market_a, everything_b, prices_a, nothing_b]
    try:
        await market_a.subscribe("market")
        await everything_b.subscribe("all")
        await prices_a.subscribe("prices")
        auth = {"Authorization": "Bearer e2e-token"}
        async with httpx.AsyncClient(base_url=registry.url(), timeout=10, headers=auth) as http:
            for body in (
                {"message": {"type": "notification", "text": "سیستم به‌روز شد"}, "group": "market"},
                {"message": {"type": "notification", "text": "to all"}, "group": "all"},
                {"message": {"type": "marker"}, "group": "all"},
            ):
                reply = await http.post("/api/broadcast", json=body)
                assert reply.status_code == 202, reply.text

            # malformed requests: each gets its 4xx and reaches nobody
            refusals = [
                await http.post(
                    "/api/broadcast", content=b"{nope", headers={"Content-Type": "application/json"}
                ),
                await http.post("/api/broadcast", json={"message": {"type": "x"}, "group": "vip"}),
                await http.post(
                    "/api/broadcast", json={"message": {"text": "no type"}, "group": "all"}
                ),
                await http.post("/api/broadcast", json={"message": "text", "group": "all"}),
                await http.post("/api/broadcast", json={"group": "all"}),
                await http.post(
                    "/api/broadcast",
                    json={"message": {"type": "big", "pad": "x" * 100_000}, "group": "all"},
                ),
                await http.post(
                    "/api/broadcast",
                    json={"message": {"type": "x"}, "group": "all"},
                    headers={"Authorization": "Bearer wrong"},
                ),
            ]
            assert [r.status_code for r in refusals] == [400, 422, 422, 422, 422, 413, 401]
            assert all(r.json()["detail"] for r in refusals)
            await http.post("/api/broadcast", json={"message": {"type": "end"}, "group": "all"})

        for client in clients:
            await client.next_of("end")
        await asyncio.sleep(0.5)  # anything duplicated would have arrived by now

        def texts(client: Client) -> list[str]:
            return [m.get("text", "") for m in client.of("notification")]

        assert texts(market_a) == ["سیستم به‌روز شد", "to all"]
        assert texts(everything_b) == ["سیستم به‌روز شد", "to all"]
        assert texts(prices_a) == ["to all"]
        assert texts(nothing_b) == ["to all"]
        for client in clients:
            assert len(client.of("marker")) == 1 and len(client.of("end")) == 1
            assert not client.of("big") and not client.of("x")
    finally:
        for client in clients:
            await client.close()


async def test_get_stats_answers_an_error_while_stats_is_down(deployment: Deployment) -> None:
    registry = await deployment.registry()
    edge = await deployment.edge("edge-a")
    client = await Client.open(edge)
    try:
        reply = await client.get_stats()
        assert reply["type"] == "error" and reply["code"] == "stats_unavailable"
        status, body = await get_json(registry.url("/api/sessions/stats"))
        assert status == 503 and "unavailable" in body["detail"]
        await deployment.stats()

        async def answered() -> bool:
            return (await client.get_stats())["type"] == "stats"

        await eventually(answered, what="get_stats once stats is up")
    finally:
        await client.close()


async def test_the_openapi_document_lists_the_guides_endpoints(deployment: Deployment) -> None:
    registry = await deployment.registry()
    status, spec = await get_json(registry.url("/openapi.json"))
    assert status == 200
    assert {
        "/api/sessions",
        "/api/sessions/stats",
        "/api/sessions/{session_id}",
        "/api/broadcast",
    } <= set(spec["paths"])
    async with httpx.AsyncClient(timeout=10) as http:
        docs = await http.get(registry.url("/docs"))
        metrics = await http.get(registry.url("/metrics"))
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "pricewire_registry_http_request_duration_seconds" in metrics.text
