"""Fault tolerance end to end (issue 6, "Faults"): the real services as processes on real
nats-servers, clients on real WebSockets.

- nats-server killed (SIGKILL) for 10 s and restarted on the same port and store: every service
  comes back by itself, the clients stay connected, prices resume, the session events of the
  outage reach the registry, the stats totals stay exact; an edge whose NATS is gone longer than
  its ``PRICEWIRE_MAX_OUTAGE_S`` fails /ready until NATS is back. Then SIGTERM on every service:
  each exits 0 within seconds.
- a 3-node NATS cluster: killing the node an edge is connected to moves the edge to another
  node, and its clients keep receiving.
- SIGTERM on an edge with clients: /ready 503 and new connections refused during the drain,
  clients closed with 1012 spread over the drain window, sessions closed in the registry, exit 0.

Measured figures (reconnect times, drain spread) are logged at INFO and recorded as
test properties (``user_properties``: they land in a JUnit report); the issue's 2 s target is
reported, not asserted, since the suite runs on slow shared machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from websockets.exceptions import InvalidStatus

from pricewire_common.encoding import dumps
from pricewire_common.testing import NatsServer, ServiceProcess
from pricewire_contracts import Group, PriceData, PriceUpdate, SubjectCatalog

from .faults_support import (
    Client,
    ReadyWatch,
    Stack,
    cluster,
    connection_names,
    eventually,
    get_json,
    metric,
    start_cluster,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

log = logging.getLogger("pricewire.tests.faults")

SUBJECTS = SubjectCatalog("pricewire")
OUTAGE_S = 10.0
#: Generous bound on "prices resume after NATS is back"; the issue's target (2 s) is reported.
RESUME_BOUND_S = 15.0
REPORT_INTERVAL_S = "0.5"
CLOSED_TOTAL = "pricewire_registry_sessions_closed_total"


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    services = Stack(tmp_path)
    yield services
    await asyncio.to_thread(services.stop_all)


class Figures:
    """Measured figures: logged at INFO and kept in the test report's ``user_properties``
    (what ``record_property`` does, minus its warning under JUnit's xunit2 family)."""

    def __init__(self, node: pytest.Item) -> None:
        self.node = node

    def __call__(self, name: str, value_s: float) -> None:
        self.node.user_properties.append((name, round(value_s, 3)))
        log.info("measured %s: %.3f s", name, value_s, extra={"figure": name, "value_s": value_s})


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> Figures:
    assert isinstance(request.node, pytest.Item)
    return Figures(request.node)


def edge_env(nats_url: str, **extra: str) -> dict[str, str]:
    return {
        "PRICEWIRE_NATS_URL": nats_url,
        "PRICEWIRE_REPORT_INTERVAL_S": REPORT_INTERVAL_S,
        "PRICEWIRE_SESSION_COMMIT_S": "0.2",
        **extra,
    }


def registry_env(nats_url: str) -> dict[str, str]:
    # the registry's own report interval stays at its default: it is the grace it gives an
    # edge it has not heard from since NATS came back
    return {"PRICEWIRE_NATS_URL": nats_url, "PRICEWIRE_BROADCAST_TOKEN": "faults-token"}


def stats_env(nats_url: str) -> dict[str, str]:
    return {"PRICEWIRE_NATS_URL": nats_url, "PRICEWIRE_STATS_INTERVAL_S": "1"}


async def listed_sessions(registry: ServiceProcess) -> tuple[set[str], dict[str, Any]]:
    status, body = await get_json(registry.url("/api/sessions"))
    assert status == 200, body
    return set(body["sessions"]), body["stats"]


# -- 1. nats-server killed for 10 s -----------------------------------------------------------


async def test_a_ten_second_nats_crash_loses_no_client_no_session_and_no_count(
    nats_server: NatsServer, stack: Stack, measured: Figures
) -> None:
    url = nats_server.url
    simulator = stack.add("pricewire_ingest.simulator", "simulator", {"PRICEWIRE_SIM_SEED": "6"})
    await stack.start(simulator)
    ingest = stack.add(
        "pricewire_ingest",
        "ingest",
        {
            "PRICEWIRE_NATS_URL": url,
            "PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE": simulator.url(),
            "PRICEWIRE_SIMULATED_KEYS": "true",
            "PRICEWIRE_POLL_INTERVAL_SCALE": "0.1",
            "PRICEWIRE_INITIAL_SPREAD_S": "1",
            "PRICEWIRE_REQUEST_TIMEOUT_S": "4",
            "PRICEWIRE_PRICE_TICK_S": "0.5",
            "PRICEWIRE_MARKET_INTERVAL_S": "1",
        },
    )
    registry = stack.add("pricewire_registry", "registry", registry_env(url))
    stats = stack.add("pricewire_stats", "stats", stats_env(url))
    edge = stack.add("pricewire_edge", "edge", edge_env(url, PRICEWIRE_MAX_OUTAGE_S="3"))
    await stack.start(ingest, registry, stats, edge)
    services = {"ingest": ingest, "registry": registry, "stats": stats, "edge": edge}
    ws_url = edge.url("/ws", scheme="ws")

    steady = await Client.open(ws_url, "steady")  # connected throughout
    leaver = await Client.open(ws_url, "leaver")  # leaves during the outage
    clients = [steady, leaver]
    watches = {name: ReadyWatch(proc).start() for name, proc in services.items()}
    try:
        await steady.subscribe("prices")
        await leaver.subscribe("prices")
        await steady.next_of("price_update", within=60)

        async def both_listed() -> bool:
            return (await listed_sessions(registry))[0] == {steady.session_id, leaver.session_id}

        await eventually(both_listed, what="the two first sessions in the registry")

        # -- the crash ------------------------------------------------------------------------
        nats_server.kill()
        killed_at = time.monotonic()
        await asyncio.sleep(2)
        await leaver.close()
        newcomer = await Client.open(ws_url, "newcomer")  # the edge accepts without NATS
        clients.append(newcomer)
        await newcomer.subscribe("prices")  # its first message: the session is committed
        blink = await Client.open(ws_url, "blink")  # opened and closed within the outage
        clients.append(blink)
        await blink.send({"type": "ping"})
        await blink.next_of("pong")
        await blink.close()
        await asyncio.sleep(max(0.0, killed_at + OUTAGE_S - time.monotonic()))
        await asyncio.to_thread(nats_server.start)
        back_at = time.monotonic()
        measured("nats_outage_s", back_at - killed_at)

        # -- every service is ready again by itself ---------------------------------------------
        async def all_ready() -> bool:
            return all(w.first(200, since=back_at) is not None for w in watches.values())

        await eventually(all_ready, within=60, what="every service ready after the restart")
        for name, watch in watches.items():
            ready_again = watch.first(200, since=back_at)
            assert ready_again is not None
            measured(f"{name}_ready_after_restart_s", ready_again - back_at)
        # the edge (max outage 3 s) failed /ready while NATS was gone longer than that
        during = watches["edge"].statuses(killed_at + 4.5, back_at - 0.2)
        assert during and set(during) == {503}, during
        assert 200 in watches["edge"].statuses(killed_at, killed_at + 2.5)
        # the others (default limit 30 s) stay ready through a 10 s outage: no needless restart
        for name in ("registry", "stats", "ingest"):
            seen = set(watches[name].statuses(killed_at, back_at))
            assert 200 in seen and seen <= {200, None}, (name, seen)

        # -- prices resume ----------------------------------------------------------------------
        await steady.next_of("price_update", since=back_at, within=60)
        resumed_after = steady.of("price_update", since=back_at)[0][0] - back_at
        measured("prices_resumed_after_restart_s", resumed_after)
        assert resumed_after < RESUME_BOUND_S
        await newcomer.next_of("price_update", since=back_at, within=30)

        # -- nobody was disconnected ----------------------------------------------------------
        assert steady.closed_at is None and newcomer.closed_at is None

        # -- the outage's session events reached the registry -------------------------------------
        expected = {steady.session_id, newcomer.session_id}

        async def outage_events_applied() -> bool:
            return (await listed_sessions(registry))[0] == expected

        await eventually(outage_events_applied, within=30, what="the outage's opens and closes")
        _, totals = await listed_sessions(registry)
        assert totals == {"active_connections": 2, "total_sessions": 4}
        # closed by their own close events, not guessed from an edge's silence
        assert await metric(registry, CLOSED_TOTAL, reason="event") == 2
        assert await metric(registry, CLOSED_TOTAL, reason="edge_lost") == 0
        status, _ = await get_json(registry.url(f"/api/sessions/{leaver.session_id}"))
        assert status == 404

        # -- the stats totals are exact ---------------------------------------------------------
        async def stats_exact() -> bool:
            status, body = await get_json(registry.url("/api/sessions/stats"))
            return status == 200 and body["total_sessions"] == 4 and body["active_connections"] == 2

        await eventually(stats_exact, within=30, what="exact totals from the stats service")
        await asyncio.sleep(2)  # a few more reports: still exact, nothing counted twice
        status, body = await get_json(registry.url("/api/sessions/stats"))
        assert (body["total_sessions"], body["active_connections"]) == (4, 2), body
        assert steady.closed_at is None and newcomer.closed_at is None
    finally:
        for watch in watches.values():
            await watch.stop()
        for client in clients:
            await client.close()

    # -- SIGTERM on every other service: each exits 0 within seconds -------------------------
    for name in ("ingest", "stats", "registry", "simulator"):
        code, took = await stack.sigterm(stack.procs[name])
        measured(f"{name}_sigterm_exit_s", took)
        assert code == 0, f"{name} exited with {code}"
        assert took < 15, f"{name} took {took:.1f}s to exit"


# -- 2. a 3-node cluster loses the edge's node ----------------------------------------------


def price(symbol: str, value: float) -> bytes:
    return dumps(PriceUpdate(data=PriceData(symbol=symbol, price=value)))


async def test_killing_the_node_an_edge_is_on_moves_it_and_its_clients_keep_receiving(
    tmp_path: Path, stack: Stack, measured: Figures
) -> None:
    nodes = cluster(tmp_path / "cluster")
    try:
        await start_cluster(nodes)
        urls = ",".join(n.url for n in nodes)
        edge = stack.add(
            "pricewire_edge", "edge-c", edge_env(urls, PRICEWIRE_NATS_STREAM_REPLICAS="3")
        )
        await stack.start(edge)
        name = "ws-edge-edge-c"

        def node_of_edge() -> list[NatsServer]:
            return [n for n in nodes if n.proc is not None and name in connection_names(n)]

        home = node_of_edge()
        assert len(home) == 1, [connection_names(n) for n in nodes]
        doomed = home[0]
        survivors = [n for n in nodes if n is not doomed]
        publisher = await nats.connect(
            servers=[n.url for n in survivors], max_reconnect_attempts=-1, reconnect_time_wait=0.2
        )
        info = await publisher.jetstream().stream_info(SUBJECTS.stream(Group.PRICES))
        assert info.config.num_replicas == 3 and info.cluster is not None
        assert len(info.cluster.replicas or []) == 2  # the leader and two followers
        log.info(
            "the edge's node %s; the prices stream's leader %s",
            doomed.server_name,
            info.cluster.leader,
            extra={"edge_node": doomed.server_name, "stream_leader": info.cluster.leader},
        )
        clients = [await Client.open(edge.url("/ws", scheme="ws"), f"c{i}") for i in range(3)]
        stop_publishing = asyncio.Event()

        async def publish_forever() -> None:
            # core publishes, like the ingest; the R3 stream captures them on any node
            value = 100.0
            while not stop_publishing.is_set():
                value += 0.01
                with contextlib.suppress(Exception):
                    await publisher.publish(SUBJECTS.price("BTC"), price("BTC", value))
                await asyncio.sleep(0.1)

        publishing = asyncio.create_task(publish_forever())
        try:
            for client in clients:
                await client.subscribe("prices")
            for client in clients:
                await client.next_of("price_update", within=30)

            doomed.kill()
            killed_at = time.monotonic()

            async def moved() -> bool:
                return len(node_of_edge()) == 1

            measured("edge_moved_to_another_node_s", await eventually(moved, within=30))
            assert node_of_edge()[0] in survivors
            for client in clients:
                await client.next_of("price_update", since=killed_at, within=60)
            resumed = time.monotonic()
            for client in clients:  # and they keep coming
                await client.at_least(5, "price_update", since=resumed)
            assert all(c.closed_at is None for c in clients)
            # the longest silence a client saw across the kill (one price every 0.1 s otherwise)
            silence = max(
                max(b - a for a, b in itertools.pairwise(t for t, _ in c.of("price_update")))
                for c in clients
            )
            measured("cluster_longest_price_gap_s", silence)
            seqs = [m["seq"] for _, m in clients[0].of("price_update")]
            assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        finally:
            stop_publishing.set()
            await publishing
            for client in clients:
                await client.close()
            await publisher.close()
    finally:
        await asyncio.to_thread(stack.stop_all)
        for node in nodes:
            node.stop()


# -- 3. SIGTERM on an edge with clients -------------------------------------------------------

DRAIN_WINDOW_S = 3.0
DRAINED_CLIENTS = 6


async def test_sigterm_on_an_edge_drains_its_clients_over_the_window_and_closes_their_sessions(
    nats_server: NatsServer, stack: Stack, measured: Figures
) -> None:
    url = nats_server.url
    registry = stack.add("pricewire_registry", "registry", registry_env(url))
    edge = stack.add(
        "pricewire_edge",
        "edge-draining",
        edge_env(url, PRICEWIRE_DRAIN_WINDOW_S=str(DRAIN_WINDOW_S)),
    )
    await stack.start(registry, edge)
    ws_url = edge.url("/ws", scheme="ws")
    clients = [await Client.open(ws_url, f"client-{i}") for i in range(DRAINED_CLIENTS)]
    watch = ReadyWatch(edge, every_s=0.1)
    try:
        for client in clients:
            await client.subscribe("prices")
        ids = {c.session_id for c in clients}

        async def all_listed() -> bool:
            return (await listed_sessions(registry))[0] == ids

        await eventually(all_listed, what="every session in the registry")

        watch.start()
        await eventually(lambda: bool(watch.seen), what="a first /ready answer")
        stopping = asyncio.create_task(stack.sigterm(edge))
        sigterm_at = time.monotonic()

        async def draining() -> bool:
            return watch.first(503, since=sigterm_at) is not None

        await eventually(draining, within=10, what="/ready answering 503 during the drain")
        # a new connection is refused with a 503 (the port stays open for /ready)
        with pytest.raises(InvalidStatus) as refused:
            late = await Client.open(ws_url, "late")
            await late.close()
        assert refused.value.response.status_code == 503

        code, took = await stopping
        measured("edge_sigterm_exit_s", took)
        assert code == 0
        await eventually(lambda: all(c.closed_at is not None for c in clients), what="every close")
        assert [c.close_code for c in clients] == [1012] * DRAINED_CLIENTS
        closes = sorted(c.closed_at for c in clients if c.closed_at is not None)
        spread = closes[-1] - closes[0]
        measured("drain_first_close_after_sigterm_s", closes[0] - sigterm_at)
        measured("drain_close_spread_s", spread)
        # spread over the window (n closes, one every window/n), not all at once
        assert spread >= DRAIN_WINDOW_S * 0.5, closes
        gaps = [b - a for a, b in itertools.pairwise(closes)]
        assert max(gaps) < DRAIN_WINDOW_S, gaps

        async def sessions_closed() -> bool:
            listed, totals = await listed_sessions(registry)
            return not (listed & ids) and totals["active_connections"] == 0

        await eventually(sessions_closed, within=30, what="the drained sessions closed")
        _, totals = await listed_sessions(registry)
        assert totals["total_sessions"] == DRAINED_CLIENTS
        # by the edge's close events (reason edge_draining), not by the registry's sweeps
        assert await metric(registry, CLOSED_TOTAL, reason="event") == DRAINED_CLIENTS
        for client in clients[:2]:
            status, body = await get_json(registry.url(f"/api/sessions/{client.session_id}"))
            assert status == 404, body
    finally:
        await watch.stop()
        for client in clients:
            await client.close()
