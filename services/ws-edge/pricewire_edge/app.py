"""ws-edge wiring: the WebSocket server, NATS in, fan-out, reports. Decisions live elsewhere.

Data flow for one market-data message::

    JetStream ordered consumer (one per data group, per edge)
      -> seq added, JSON encoded once, WebSocket frame built once   (_on_data)
      -> kept in the group's history                                (history.GroupHistory)
      -> receivers found in the subscription index                  (subscriptions)
      -> frame appended to each receiver's list, flushed once per loop turn (connection)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

import orjson
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy
from websockets.http11 import Request

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_common.streams import StreamLimits, ensure_streams
from pricewire_contracts import (
    DATA_GROUPS,
    AuthRequest,
    ClientMessage,
    ClientType,
    EdgeReport,
    ErrorMessage,
    GetStatsRequest,
    Group,
    Heartbeat,
    PingRequest,
    PongMessage,
    ResumeFailed,
    ResumeRequest,
    SessionActivity,
    SessionClosed,
    SessionOpened,
    StatsRequest,
    Subscribed,
    SubscribeRequest,
    Unsubscribed,
    UnsubscribeRequest,
    Welcome,
    utc_timestamp,
)

from . import metrics as m
from .connection import Connection, Flusher
from .history import GroupHistory, Stored
from .http_routes import StaticFiles, http_response
from .protocol import ProtocolError, classify_client, parse_client_message, text_frame
from .settings import EdgeSettings
from .subscriptions import Subscription, SubscriptionIndex

__all__ = ["EdgeApp"]

log = logging.getLogger("pricewire.edge")

_STATS_KEY = "stats"
_PROVIDER_STATS_KEY = "provider_stats"
_HEARTBEAT_KEY = "heartbeat"


class EdgeApp:
    """One edge process. ``await start()``, then ``await stop()`` (graceful drain)."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.subjects = settings.subjects
        self.link = NatsLink(settings, name="ws-edge")
        self.edge_id = settings.instance_id
        self.boot_id = uuid.uuid4().hex
        self.max_message_bytes = 64 * 1024
        self.static = StaticFiles(settings.static_dir)
        self.index: SubscriptionIndex[Connection] = SubscriptionIndex()
        self.connections: set[Connection] = set()
        self.slow: set[Connection] = set()
        self.history = {
            g: GroupHistory(g, maxlen=settings.history_messages, tail=self._tail(g))
            for g in DATA_GROUPS
        }
        self.provider_stats: bytes | None = None
        self.total_sessions = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.client_types = dict.fromkeys(ClientType, 0)
        self.report_sequence = 0
        self.active_since_report: set[Connection] = set()
        self.subscribed_nats = False
        self.draining = False
        self.flusher: Flusher
        self.server: asyncio.Server | None = None
        self.port = settings.port
        self._tasks: list[asyncio.Task[None]] = []

    def _tail(self, group: Group) -> int:
        return {
            Group.NEWS: self.settings.snapshot_news,
            Group.ALERTS: self.settings.snapshot_alerts,
        }.get(group, 0)

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.flusher = Flusher(loop)
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
        for coro in (self._connect_nats(), self._heartbeats(), self._reports(), self._sweep()):
            task = asyncio.create_task(coro)
            task.add_done_callback(_log_failure)
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
        if self.server is not None:
            self.server.close()
        clients = list(self.connections)
        step = drain_window_s / len(clients) if clients and drain_window_s else 0.0
        for conn in clients:
            conn.close(1012, "service restart")
            if step:
                await asyncio.sleep(step)
        for _ in range(50):  # wait for the closing handshakes, briefly
            if not self.connections:
                break
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.link.is_connected:
            self._publish_report()
        await self.link.close()
        log.info("WebSocket edge stopped", extra={"sessions": self.total_sessions})

    def ready(self) -> bool:
        return (
            not self.draining
            and self.subscribed_nats
            and self.link.ready(max_outage_s=self.settings.max_outage_s)
        )

    # -- NATS ---------------------------------------------------------------------------
    async def _connect_nats(self) -> None:
        nc = await self.link.connect()
        js = nc.jetstream()
        await ensure_streams(
            js,
            self.subjects,
            StreamLimits(
                history_s=self.settings.nats_history_s, replicas=self.settings.nats_stream_replicas
            ),
        )
        for group in DATA_GROUPS:
            await self._consume(js, group)
        await nc.subscribe(self.subjects.stats_update, cb=self._on_stats_update)
        await nc.subscribe(self.subjects.provider_stats, cb=self._on_provider_stats)
        await nc.subscribe(self.subjects.broadcasts, cb=self._on_broadcast)
        await nc.flush()
        self.subscribed_nats = True
        log.info("edge subscribed to NATS", extra={"edge_id": self.edge_id})

    async def _consume(self, js: Any, group: Group) -> None:
        """An ordered consumer per group: every message once, in stream order, with its seq.

        It starts with the group's current state (last value per subject, or the last few
        news items and alerts) so that even a fresh edge has a snapshot to give.
        """
        subject = self.subjects.stream_subject(group)
        stream = self.subjects.stream(group)
        config: ConsumerConfig | None = None
        policy = DeliverPolicy.LAST_PER_SUBJECT
        tail = self._tail(group)
        if group in (Group.NEWS, Group.ALERTS):
            info = await js.stream_info(stream)
            last = info.state.last_seq
            if last and tail:
                policy = DeliverPolicy.BY_START_SEQUENCE
                config = ConsumerConfig(opt_start_seq=max(info.state.first_seq, last - tail + 1))
            else:
                policy = DeliverPolicy.NEW

        async def on_msg(msg: Msg) -> None:
            self._on_data(group, msg.subject, msg.metadata.sequence.stream, msg.data)

        await js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
            cb=on_msg,
        )

    def _on_data(self, group: Group, subject: str, seq: int, data: bytes) -> None:
        started = time.perf_counter()
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            m.BAD_UPSTREAM.labels(group.value).inc()
            log.warning("dropped a malformed message", extra={"subject": subject, "seq": seq})
            return
        body["seq"] = seq
        symbol = subject.rsplit(".", 1)[1] if group is Group.PRICES else None
        item = Stored(seq, symbol, text_frame(orjson.dumps(body)))
        if not self.history[group].add(item):
            return  # a replay of something already delivered (consumer recreated)
        key = f"p:{symbol}" if symbol else ("market" if group is Group.MARKET else None)
        self._fanout(self.index.receivers(group, symbol), item.frame, key, seq)
        m.FANOUT_MESSAGES.labels(group.value).inc()
        m.FANOUT_LATENCY.observe(time.perf_counter() - started)

    def _fanout(
        self, receivers: Iterable[Connection], frame: bytes, key: str | None, seq: int = 0
    ) -> None:
        n = 0
        for conn in receivers:
            conn.send(frame, key, seq)
            n += 1
        self.messages_sent += n
        m.MESSAGES_SENT.inc(n)

    async def _on_stats_update(self, msg: Msg) -> None:
        self._fanout(self.connections, text_frame(msg.data), _STATS_KEY)

    async def _on_provider_stats(self, msg: Msg) -> None:
        self.provider_stats = text_frame(msg.data)
        self._fanout(self.index.receivers(Group.MARKET), self.provider_stats, _PROVIDER_STATS_KEY)

    async def _on_broadcast(self, msg: Msg) -> None:
        group = Group(msg.subject.rsplit(".", 1)[1])
        frame = text_frame(msg.data)
        receivers = self.connections if group is Group.ALL else self.index.receivers(group)
        self._fanout(receivers, frame, None)

    def _publish(self, subject: str, payload: bytes) -> None:
        """Fire and forget: nats-py buffers while reconnecting; before the first connect, drop."""
        if not self.link.connected.is_set():
            return
        self._spawn(self.link.nc.publish(subject, payload))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_failure)

    # -- periodic work --------------------------------------------------------------------
    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            self._fanout(self.connections, text_frame(dumps(Heartbeat())), _HEARTBEAT_KEY)

    async def _reports(self) -> None:
        while True:
            await asyncio.sleep(self.settings.report_interval_s)
            if self.link.is_connected:
                self._publish_report()

    def report(self) -> EdgeReport:
        return EdgeReport(
            edge_id=self.edge_id,
            boot_id=self.boot_id,
            sequence=self.report_sequence,
            report_interval_s=self.settings.report_interval_s,
            sent_at=utc_timestamp(),
            active_connections=len(self.connections),
            total_sessions=self.total_sessions,
            messages_sent=self.messages_sent,
            messages_received=self.messages_received,
            client_types={k: v for k, v in self.client_types.items() if v},
            subscriptions=self.index.group_counts(),
            session_ids=[c.session_id for c in self.connections],
            draining=self.draining,
        )

    def _publish_report(self) -> None:
        self.report_sequence += 1
        self._publish(self.subjects.edge_report(self.edge_id), dumps(self.report()))
        if self.active_since_report:
            activity = SessionActivity(
                edge_id=self.edge_id,
                last_activity={
                    c.session_id: utc_timestamp(_wall(c.last_activity))
                    for c in self.active_since_report
                },
            )
            self.active_since_report.clear()
            self._publish(self.subjects.session_activity, dumps(activity))

    async def _sweep(self) -> None:
        """Close clients stuck behind a full buffer for too long (4009)."""
        while True:
            await asyncio.sleep(1.0)
            limit = time.monotonic() - self.settings.slow_client_timeout_s
            for conn in [c for c in self.slow if c.paused_at < limit]:
                self.slow.discard(conn)
                m.SLOW_CLIENT_DROPS.inc()
                log.warning("WebSocket slow client closed", extra={"session_id": conn.session_id})
                conn.close(4009, "slow consumer")
                conn.abort()

    # -- connections --------------------------------------------------------------------
    def on_request(self, conn: Connection, request: Request) -> None:
        path, _, query = request.path.partition("?")
        if path != self.settings.ws_path:
            conn.ws.send_response(http_response(path, self.static, self.ready))
            return
        if self.draining:
            conn.ws.send_response(conn.ws.reject(503, "edge is draining, reconnect elsewhere\n"))
            m.HANDSHAKES_REFUSED.labels("draining").inc()
            return
        response = conn.ws.accept(request)
        conn.ws.send_response(response)
        conn.write_protocol_output()  # the 101 goes out before the welcome
        if response.status_code == 101:
            params = parse_qs(query)
            override = params.get("client_type", [None])[0]
            self._open(conn, classify_client(request.headers.get("User-Agent"), override))
        else:
            m.HANDSHAKES_REFUSED.labels("bad_handshake").inc()

    def _open(self, conn: Connection, client_type: ClientType) -> None:
        conn.session_id = str(uuid.uuid4())
        conn.client_type = client_type
        conn.connected_at = conn.last_activity = time.time()
        self.connections.add(conn)
        self.total_sessions += 1
        self.client_types[client_type] += 1
        m.SESSIONS.inc()
        m.ACTIVE_CONNECTIONS.set(len(self.connections))
        m.CONNECTIONS_BY_TYPE.labels(client_type.value).inc()
        self._reply(conn, dumps(Welcome(session_id=conn.session_id)))
        opened = SessionOpened(
            session_id=conn.session_id,
            edge_id=self.edge_id,
            client_type=client_type,
            connected_at=utc_timestamp(_wall(conn.connected_at)),
        )
        self._publish(self.subjects.session_opened, dumps(opened))
        log.info(
            "WebSocket connected",
            extra={
                "session_id": conn.session_id,
                "client_type": client_type.value,
                "ip": conn.client_ip,
            },
        )
        self._spawn(self._initial_stats(conn))

    def on_close(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self.slow.discard(conn)
        self.active_since_report.discard(conn)
        self.index.remove(conn)
        self.client_types[conn.client_type] -= 1
        m.ACTIVE_CONNECTIONS.set(len(self.connections))
        m.CONNECTIONS_BY_TYPE.labels(conn.client_type.value).dec()
        code = conn.ws.close_rcvd.code if conn.ws.close_rcvd else None
        closed = SessionClosed(
            session_id=conn.session_id,
            edge_id=self.edge_id,
            closed_at=utc_timestamp(),
            reason="edge_draining" if self.draining else "client_closed",
            close_code=code,
        )
        self._publish(self.subjects.session_closed, dumps(closed))
        log.info("WebSocket disconnected", extra={"session_id": conn.session_id, "code": code})

    def _reply(self, conn: Connection, payload: bytes) -> None:
        conn.send_now(payload)
        self.messages_sent += 1
        m.MESSAGES_SENT.inc()

    def _error(self, conn: Connection, err: ProtocolError) -> None:
        m.CLIENT_ERRORS.labels(err.code).inc()
        msg = ErrorMessage(code=err.code, message=err.message, request_type=err.request_type)
        self._reply(conn, dumps(msg))

    # -- client messages ------------------------------------------------------------------
    def on_message(self, conn: Connection, data: bytes) -> None:
        if conn not in self.connections:
            return
        self.messages_received += 1
        m.MESSAGES_RECEIVED.inc()
        conn.last_activity = time.time()
        self.active_since_report.add(conn)
        request = parse_client_message(data)
        if isinstance(request, ProtocolError):
            self._error(conn, request)
        else:
            self._handle(conn, request)

    def _handle(self, conn: Connection, request: ClientMessage) -> None:
        if isinstance(request, SubscribeRequest):
            self._subscribe(conn, request)
        elif isinstance(request, UnsubscribeRequest):
            self.index.unsubscribe(conn, request.group)
            self._reply(conn, dumps(Unsubscribed(group=request.group)))
        elif isinstance(request, PingRequest):
            self._reply(conn, dumps(PongMessage()))
        elif isinstance(request, GetStatsRequest):
            self._spawn(self._get_stats(conn))
        elif isinstance(request, AuthRequest):
            self._error(
                conn,
                ProtocolError(
                    "unauthorized", "authentication is not configured on this edge", "auth"
                ),
            )
        elif isinstance(request, ResumeRequest):
            self._reply(
                conn,
                dumps(
                    ResumeFailed(reason="resume is not available", session_id=request.session_id)
                ),
            )

    def _subscribe(self, conn: Connection, request: SubscribeRequest) -> None:
        symbols = frozenset(request.symbols) if request.symbols else None
        self.index.subscribe(conn, Subscription(request.group, symbols, request.max_rate_hz))
        self._reply(conn, dumps(Subscribed(group=request.group, symbols=request.symbols)))
        self._send_snapshot(conn, request.group, symbols)

    def _send_snapshot(
        self, conn: Connection, group: Group, symbols: frozenset[str] | None
    ) -> None:
        groups = DATA_GROUPS if group is Group.ALL else (group,)
        n = 0
        for g in groups:
            for item in self.history[g].snapshot(symbols if g is Group.PRICES else None):
                conn.send(item.frame, None, item.seq)
                n += 1
            if g is Group.MARKET and self.provider_stats is not None:
                conn.send(self.provider_stats)
                n += 1
        self.messages_sent += n
        m.MESSAGES_SENT.inc(n)

    async def _ask_stats(self) -> bytes | None:
        if not self.link.is_connected:
            return None
        request = StatsRequest(edge_id=self.edge_id, report=self.report())
        try:
            reply = await self.link.nc.request(
                self.subjects.stats_get, dumps(request), timeout=self.settings.stats_timeout_s
            )
        except (TimeoutError, NatsTimeoutError, NoRespondersError):
            return None
        data: bytes = reply.data
        return data

    async def _get_stats(self, conn: Connection) -> None:
        data = await self._ask_stats()
        if not conn.is_open:
            return
        if data is None:
            self._error(
                conn,
                ProtocolError(
                    "stats_unavailable", "the stats service did not answer; try again", "get_stats"
                ),
            )
        else:
            self._reply(conn, data)

    async def _initial_stats(self, conn: Connection) -> None:
        """A new client learns the online count at once, not at the next 30 s tick."""
        data = await self._ask_stats()
        if data is None or not conn.is_open:
            return
        body = orjson.loads(data)
        if isinstance(body, dict) and body.get("type") == "stats":
            body["type"] = "stats_update"
            self._reply(conn, orjson.dumps(body))


def _wall(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())
