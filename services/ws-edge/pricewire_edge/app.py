"""ws-edge wiring and life cycle: the parts composed, started, drained. Decisions live elsewhere.

=====================  ==========================================================================
:mod:`.fanout`         NATS in (ordered consumers, stats, broadcasts, heartbeats), frames out
:mod:`.sessions`       open, commit, close, adopt; reports and activity; the sweep and pings
:mod:`.handshake`      the HTTP request: static files and probes, or the upgrade to a session
:mod:`.handlers`       client messages: subscribe, unsubscribe, auth, ping, get_stats, resume
:mod:`.resume`         resume and replay (built by the handlers)
:mod:`.stats_requests` stats asked of the stats service, for one client or a batch of new ones
:mod:`.connection`     one socket; it sees the edge only as a ``ConnectionOwner``
=====================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid

from nats.js.kv import KeyValue

from pricewire_common.natsconn import NatsLink
from pricewire_contracts import DATA_GROUPS, ClientType, CloseCode, EdgeReport, Group

from . import metrics as m
from .auth import create_authenticator
from .channels import Channel
from .connection import Connection
from .fanout import Fanout
from .flusher import Flusher
from .handlers import ClientHandlers
from .handshake import Handshakes
from .history import GroupHistory
from .http_routes import StaticFiles
from .session_ledger import SessionLedger
from .sessions import Sessions
from .settings import EdgeSettings
from .stats_requests import StatsRequests
from .subscriptions import SubscriptionIndex
from .tasks import log_failure

__all__ = ["EdgeApp"]

log = logging.getLogger("pricewire.edge")


class EdgeApp:
    """One edge process. ``await start()``, then ``await stop()`` (graceful drain).

    It is the :class:`~pricewire_edge.connection.ConnectionOwner` of every connection: the
    settings a connection reads, the flusher, the slow set, and where its request, messages
    and close go (the handshake, the handlers, the sessions).
    """

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.link = NatsLink(settings, name="ws-edge")
        self.edge_id = settings.instance_id
        self.boot_id = uuid.uuid4().hex
        self.limits = settings.limits
        self.max_message_bytes = settings.limits.max_message_bytes
        self.ws_path = settings.ws_path
        self.send_buffer_bytes = settings.send_buffer_bytes
        self.backlog_messages = settings.backlog_messages
        self.authn = create_authenticator(settings.auth)
        self.conn_limiter = settings.limits.connection_limiter()
        # each data group's whole-group receivers share one batch per loop turn (channels.py)
        self.channels = {g: Channel(g) for g in DATA_GROUPS}
        self.index: SubscriptionIndex[Connection] = SubscriptionIndex(
            whole=dict[Group, set[Connection]](self.channels)
        )
        connections: set[Connection] = set()
        self.ledger = SessionLedger(
            edge_id=self.edge_id,
            boot_id=self.boot_id,
            subjects=settings.subjects,
            link=self.link,
            session_ids=lambda: (c.session_id for c in connections),
            batch_wait_s=settings.jetstream_batch_wait_s,
        )
        self.fanout = Fanout(
            settings, link=self.link, index=self.index, connections=connections, ledger=self.ledger
        )
        self.sessions = Sessions(
            settings,
            boot_id=self.boot_id,
            link=self.link,
            ledger=self.ledger,
            index=self.index,
            connections=connections,
            fanout=self.fanout,
            draining=lambda: self.draining,
        )
        m.SESSION_METRICS.report = self.sessions.report  # read when /metrics is scraped
        self.stats = StatsRequests(
            settings, link=self.link, fanout=self.fanout, report=self.sessions.report
        )
        self.handlers = ClientHandlers(
            settings,
            link=self.link,
            index=self.index,
            authn=self.authn,
            fanout=self.fanout,
            sessions=self.sessions,
            stats=self.stats,
        )
        self.resumer = self.handlers.resumer
        self.handshakes = Handshakes(
            settings,
            static=StaticFiles(settings.static_dir),
            conn_limiter=self.conn_limiter,
            sessions=self.sessions,
            stats=self.stats,
            handlers=self.handlers,
            ready=self.ready,
            draining=lambda: self.draining,
        )
        # ConnectionOwner: a connection calls these directly, with no hop through the app.
        self.connections = connections
        self.slow = self.sessions.slow
        self.on_request = self.handshakes.on_request
        self.on_message = self.handlers.on_message
        self.on_close = self.sessions.on_close
        self.draining = False
        self.flusher: Flusher
        self.server: asyncio.Server | None = None
        self.port = settings.port
        self._tasks: list[asyncio.Task[None]] = []

    # -- what tests and tools look at -----------------------------------------------------
    @property
    def by_session(self) -> dict[str, Connection]:
        return self.sessions.by_session

    @property
    def client_types(self) -> dict[ClientType, int]:
        return self.sessions.client_types

    @property
    def history(self) -> dict[Group, GroupHistory]:
        return self.fanout.history

    @property
    def subscriptions_kv(self) -> KeyValue | None:
        return self.fanout.subscriptions_kv

    def report(self) -> EdgeReport:
        return self.sessions.report()

    def commit_session(self, conn: Connection, *, resumed: bool = False) -> None:
        self.sessions.commit(conn, resumed=resumed)

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.flusher = self.fanout.flusher = Flusher(
            loop, max_wait_s=self.settings.write_pacing_max_s
        )
        for channel in self.channels.values():
            channel.flusher = self.flusher
        tls = self._tls_context()
        self.server = await loop.create_server(
            lambda: Connection(self), self.settings.host, self.settings.port, ssl=tls, backlog=4096
        )
        self.port = self.server.sockets[0].getsockname()[1]
        scheme = "wss" if tls else "ws"
        log.info(
            "WebSocket edge listening",
            extra={"url": f"{scheme}://{self.settings.host}:{self.port}{self.settings.ws_path}"},
        )
        await self.authn.start()
        background = (
            self.fanout.connect(),
            # once per period to every connection, a slice at a time (rota.py)
            self.sessions.rota.every(self.settings.heartbeat_interval_s, self.fanout.heartbeat),
            self.sessions.rota.every(self.limits.ping_interval_s, self.sessions.ping),
            self.sessions.rota.every(1.0, self.sessions.check),
            self.sessions.rota.every(self.settings.nats_history_s, self.handlers.refresh_records),
            self.sessions.reports(),
            self.sessions.sweep(),
        )
        for coro in background:
            task = asyncio.create_task(coro)
            task.add_done_callback(log_failure)
            self._tasks.append(task)

    def _tls_context(self) -> ssl.SSLContext | None:
        if not (self.settings.tls_cert_file and self.settings.tls_key_file):
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.settings.tls_cert_file, self.settings.tls_key_file)
        return ctx

    async def stop(self, *, drain_window_s: float = 0.0) -> None:
        """Graceful drain: not ready, no new connections, clients closed with 1012, NATS drained."""
        self.draining = True
        # The port stays open through the drain so that /ready answers 503 (an orchestrator
        # takes the pod out of rotation) and a late handshake gets a 503 rather than a reset.
        clients = list(self.connections)
        # Closes go out in batches evenly over 90% of the window, at most one batch per 50 ms:
        # a sleep per client would overshoot the window by its timer slack times the number of
        # clients, and a fixed 50 ms step would close a few clients all at once.
        ticks = max(1, min(len(clients), int(drain_window_s * 0.9 / 0.05)))
        per_tick = -(-len(clients) // ticks)  # ceiling
        pause = drain_window_s * 0.9 / ticks
        for start in range(0, len(clients), per_tick or 1):
            for conn in clients[start : start + per_tick]:
                conn.close(CloseCode.SERVICE_RESTART, "service restart")
            if drain_window_s:
                await asyncio.sleep(pause)
        for _ in range(50):  # wait for the closing handshakes, briefly
            if not self.connections:
                break
            await asyncio.sleep(0.05)
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.abort()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.link.is_connected:
            self.sessions.publish_report()
        await self.link.close()
        await self.authn.aclose()
        log.info("WebSocket edge stopped", extra={"sessions": self.sessions.total_sessions})

    def ready(self) -> bool:
        return (
            not self.draining
            and self.fanout.subscribed_nats
            and self.link.ready(max_outage_s=self.settings.max_outage_s)
        )
