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
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from websockets.http11 import Request

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_common.streams import ensure_kv, ensure_streams
from pricewire_contracts import (
    DATA_GROUPS,
    AuthOk,
    AuthRequest,
    ClientMessage,
    ClientType,
    CloseCode,
    EdgeReport,
    ErrorMessage,
    GetStatsRequest,
    Group,
    Heartbeat,
    PingRequest,
    PongMessage,
    Resumed,
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
from .auth import (
    AuthError,
    AuthSession,
    Principal,
    create_authenticator,
    handshake_token,
    offered_subprotocols,
)
from .connection import Connection, Flusher
from .history import GroupHistory, Stored
from .http_routes import StaticFiles, http_response
from .limits import RateDecision, subscription_weight
from .protocol import ProtocolError, classify_client, parse_client_message, text_frame
from .settings import EdgeSettings
from .subscriptions import Subscription, SubscriptionIndex

__all__ = ["EdgeApp"]

log = logging.getLogger("pricewire.edge")

#: An unmasked WebSocket ping with no payload; the same bytes for every client.
_PING_FRAME = b"\x89\x00"
_STATS_KEY = "stats"
_PROVIDER_STATS_KEY = "provider_stats"
_HEARTBEAT_KEY = "heartbeat"
#: Ordered consumers live in the memory of one nats-server: when that server restarts or dies,
#: nothing tells the client; two missed heartbeats do, and nats-py recreates the consumer after
#: the last seq seen. nats-py's 5 s default left clients without prices for up to 10 s after
#: NATS came back; 0.5 s brings that under the 2 s the issue asks.
_ORDERED_HEARTBEAT_S = 0.5


class EdgeApp:
    """One edge process. ``await start()``, then ``await stop()`` (graceful drain)."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.subjects = settings.subjects
        self.link = NatsLink(settings, name="ws-edge")
        self.edge_id = settings.instance_id
        self.boot_id = uuid.uuid4().hex
        self.max_message_bytes = settings.limits.max_message_bytes
        self.authn = create_authenticator(settings.auth)
        self.conn_limiter = settings.limits.connection_limiter()
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
        self.superseded: set[Connection] = set()
        self.stats_waiters: list[Connection] = []
        self.by_session: dict[str, Connection] = {}
        self.js: Any = None
        self.subscriptions_kv: KeyValue | None = None
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
        await self.authn.start()
        background = (
            self._connect_nats(),
            self._heartbeats(),
            self._reports(),
            self._sweep(),
            self._pings(),
        )
        for coro in background:
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
            self._publish_report()
        await self.link.close()
        await self.authn.aclose()
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
        js = self.js = nc.jetstream()
        await ensure_streams(js, self.subjects, self.settings.stream_limits)
        self.subscriptions_kv = await ensure_kv(
            js,
            self.subjects.subscriptions_bucket,
            ttl_s=2 * self.settings.nats_history_s,
            replicas=self.settings.nats_stream_replicas,
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
        news items and alerts) so that even a fresh edge has a snapshot to give; the history
        is complete only after that point (``complete_after``).
        """
        stream = self.subjects.stream(group)
        info = await js.stream_info(stream)
        last, first = info.state.last_seq, info.state.first_seq
        config: ConsumerConfig | None = None
        policy = DeliverPolicy.LAST_PER_SUBJECT
        self.history[group].complete_after = last
        tail = self._tail(group)
        if group in (Group.NEWS, Group.ALERTS):
            if last and tail:
                start = max(first, last - tail + 1)
                policy = DeliverPolicy.BY_START_SEQUENCE
                config = ConsumerConfig(opt_start_seq=start)
                self.history[group].complete_after = start - 1
            else:
                policy = DeliverPolicy.NEW

        async def on_msg(msg: Msg) -> None:
            self._on_data(group, msg.subject, msg.metadata.sequence.stream, msg.data)

        await js.subscribe(
            self.subjects.stream_subject(group),
            stream=stream,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
            idle_heartbeat=_ORDERED_HEARTBEAT_S,
            cb=on_msg,
        )

    def _decode(self, group: Group, subject: str, seq: int, data: bytes) -> Stored | None:
        """A stream message as the frame every client gets: its JSON with ``seq`` added."""
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            m.BAD_UPSTREAM.labels(group.value).inc()
            log.warning("dropped a malformed message", extra={"subject": subject, "seq": seq})
            return None
        body["seq"] = seq
        symbol = subject.rsplit(".", 1)[1] if group is Group.PRICES else None
        return Stored(seq, symbol, text_frame(orjson.dumps(body)))

    def _on_data(self, group: Group, subject: str, seq: int, data: bytes) -> None:
        started = time.perf_counter()
        item = self._decode(group, subject, seq, data)
        if item is None or not self.history[group].add(item):
            return  # malformed, or a replay of something already delivered (consumer recreated)
        symbol = item.symbol
        key = f"p:{symbol}" if symbol else ("market" if group is Group.MARKET else None)
        # the common case, nobody narrowed to symbols: the group's set itself, no generator
        narrowed = symbol is not None and symbol in self.index.by_symbol
        receivers = self.index.receivers(group, symbol) if narrowed else self.index.whole[group]
        self._fanout(receivers, item.frame, key, seq)
        m.FANOUT_MESSAGES.labels(group.value).inc()
        m.FANOUT_LATENCY.observe(time.perf_counter() - started)

    def _fanout(
        self, receivers: Iterable[Connection], frame: bytes, key: str | None, seq: int = 0
    ) -> None:
        n = 0
        mark = self.flusher.mark
        for conn in receivers:
            n += 1
            if conn.paused or conn.throttle:
                conn.send(frame, key, seq)
                continue
            conn.pending.append(frame)  # Connection.send's fast path, inlined: the hot loop
            if not conn.marked:
                conn.marked = True
                mark(conn)
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

    def report(self, *, sessions: bool = True) -> EdgeReport:
        """The edge's counters; ``sessions=False`` leaves out the session list (O(clients))."""
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
            session_ids=[c.session_id for c in self.connections] if sessions else [],
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
        """Once a second: slow clients (4009), auth deadlines (4001/4010), dead links (1011/4011)."""
        limits = self.settings.limits
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for conn in [
                c for c in self.slow if c.paused_at < now - self.settings.slow_client_timeout_s
            ]:
                self.slow.discard(conn)
                m.SLOW_CLIENT_DROPS.inc()
                log.warning("WebSocket slow client closed", extra={"session_id": conn.session_id})
                conn.close(CloseCode.SLOW_CONSUMER, "slow consumer")
                conn.abort()
            wall = time.time()
            for conn in list(self.connections):
                silent = now - conn.last_seen
                if conn.auth is not None and (code := conn.auth.due(wall)) is not None:
                    reason = (
                        "token expired"
                        if code is CloseCode.TOKEN_EXPIRED
                        else "authentication timeout"
                    )
                    self._close(conn, code, reason)
                elif silent > limits.idle_timeout_s:
                    self._close(conn, CloseCode.IDLE_TIMEOUT, "idle timeout")
                elif silent > limits.ping_interval_s + limits.ping_timeout_s:
                    self._close(conn, CloseCode.INTERNAL_ERROR, "ping timeout")
                    conn.abort()  # half-open: nobody would read a close frame

    def _close(self, conn: Connection, code: int, reason: str) -> None:
        m.CLOSES.labels(str(code)).inc()
        log.info(
            "WebSocket closed by the edge",
            extra={"session_id": conn.session_id, "code": code, "reason": reason},
        )
        conn.close(code, reason)

    async def _pings(self) -> None:
        """WebSocket pings: browsers and libraries answer by themselves; silence means half-open."""
        while True:
            await asyncio.sleep(self.settings.limits.ping_interval_s)
            for conn in self.connections:
                conn.send(_PING_FRAME, "ping")

    # -- connections --------------------------------------------------------------------
    def on_request(self, conn: Connection, request: Request) -> None:
        path, _, query = request.path.partition("?")
        if path != self.settings.ws_path:
            conn.ws.send_response(http_response(path, self.static, self.ready))
            return
        refused = self._refuse_handshake(request)
        if refused is not None:
            status, reason, text = refused
            conn.ws.send_response(conn.ws.reject(status, text + "\n"))
            m.HANDSHAKES_REFUSED.labels(reason).inc()
            return
        response = conn.ws.accept(request)
        conn.ws.send_response(response)
        conn.write_protocol_output()  # the 101 goes out before the welcome
        if response.status_code != 101:
            m.HANDSHAKES_REFUSED.labels("bad_handshake").inc()
            return
        ip = self.settings.limits.client_ip(conn.client_ip, request.headers)
        refusal = self.conn_limiter.acquire(ip)
        if refusal is not None:
            m.HANDSHAKES_REFUSED.labels(refusal.reason).inc()
            conn.close(refusal.close_code, refusal.message)
            return
        conn.ip_key = ip
        params = parse_qs(query)
        override = params.get("client_type", [None])[0]
        self._open(conn, classify_client(request.headers.get("User-Agent"), override))
        try:
            token = handshake_token(
                query=query,
                subprotocols=offered_subprotocols(
                    request.headers.get_all("Sec-WebSocket-Protocol")
                ),
                allow_query=self.settings.auth.query_token,
            )
        except AuthError as err:
            self._auth_failed(conn, err, close=True)
            return
        if token is not None and self.settings.auth.mode != "off":
            conn.inbox = []  # hold the client's first messages until the token is checked
            self._spawn(self._handshake_auth(conn, token))

    def _refuse_handshake(self, request: Request) -> tuple[int, str, str] | None:
        if self.draining:
            return 503, "draining", "the edge is draining; reconnect to another one"
        headers = request.headers
        if not self.settings.limits.origin_allowed(headers.get("Origin"), headers.get("Host")):
            return 403, "origin", "origin not allowed"
        return None

    def _open(self, conn: Connection, client_type: ClientType) -> None:
        conn.session_id = str(uuid.uuid4())
        conn.client_type = client_type
        conn.connected_at = conn.last_activity = time.time()
        conn.auth = AuthSession(self.settings.auth, connected_at=conn.connected_at)
        conn.rate = self.settings.limits.rate_limiter(now=time.monotonic())
        self.connections.add(conn)
        self.by_session[conn.session_id] = conn
        self.client_types[client_type] += 1
        m.ACTIVE_CONNECTIONS.set(len(self.connections))
        m.CONNECTIONS_BY_TYPE.labels(client_type.value).inc()
        self._reply(conn, dumps(Welcome(session_id=conn.session_id)))
        # The session is announced at the first message or after a moment, whichever comes
        # first, so that a reconnecting client whose first message is ``resume`` keeps its old
        # session instead of being counted as a new one.
        asyncio.get_running_loop().call_later(
            self.settings.session_commit_s, self._commit_session, conn
        )
        self._want_initial_stats(conn)

    def _commit_session(self, conn: Connection, *, resumed: bool = False) -> None:
        if conn.committed or conn not in self.connections:
            return
        conn.committed = True
        if not resumed:
            self.total_sessions += 1
            m.SESSIONS.inc()
        opened = SessionOpened(
            session_id=conn.session_id,
            edge_id=self.edge_id,
            client_type=conn.client_type,
            connected_at=utc_timestamp(_wall(conn.connected_at)),
            resumed=resumed,
            user=conn.user,
        )
        self._publish(self.subjects.session_opened, dumps(opened))
        log.info(
            "WebSocket session resumed" if resumed else "WebSocket connected",
            extra={
                "session_id": conn.session_id,
                "client_type": conn.client_type.value,
                "ip": conn.client_ip,
            },
        )

    def on_close(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self._commit_session(conn)  # a client gone within the commit delay still was a session
        if conn.ip_key is not None:
            self.conn_limiter.release(conn.ip_key)
        self.connections.discard(conn)
        if self.by_session.get(conn.session_id) is conn:
            del self.by_session[conn.session_id]
        self.slow.discard(conn)
        self.active_since_report.discard(conn)
        self.index.remove(conn)
        self.client_types[conn.client_type] -= 1
        m.ACTIVE_CONNECTIONS.set(len(self.connections))
        m.CONNECTIONS_BY_TYPE.labels(conn.client_type.value).dec()
        code = conn.ws.close_rcvd.code if conn.ws.close_rcvd else None
        if conn in self.superseded:
            self.superseded.discard(conn)  # its session lives on in a newer connection
            return
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
        if conn.inbox is not None:  # the handshake token is being checked
            if len(conn.inbox) < self.settings.limits.message_burst:
                conn.inbox.append(data)
            return
        self.messages_received += 1
        m.MESSAGES_RECEIVED.inc()
        conn.last_activity = time.time()
        self.active_since_report.add(conn)
        if conn.rate is not None:
            decision = conn.rate.check(time.monotonic())
            if decision is RateDecision.CLOSE:
                self._close(conn, CloseCode.RATE_LIMITED, "message rate limit exceeded")
                return
            if decision is RateDecision.WARN:
                self._error(conn, ProtocolError("rate_limited", "too many messages; slow down"))
                return
        request = parse_client_message(data)
        if not conn.committed and not isinstance(request, ResumeRequest):
            self._commit_session(conn)
        if isinstance(request, ProtocolError):
            self._error(conn, request)
        else:
            self._handle(conn, request)

    def _handle(self, conn: Connection, request: ClientMessage) -> None:
        if isinstance(request, SubscribeRequest):
            self._subscribe(conn, request)
        elif isinstance(request, UnsubscribeRequest):
            self.index.unsubscribe(conn, request.group)
            self._apply_throttle(conn)
            self._save_subscriptions(conn)
            self._reply(conn, dumps(Unsubscribed(group=request.group)))
        elif isinstance(request, PingRequest):
            self._reply(conn, dumps(PongMessage()))
        elif isinstance(request, GetStatsRequest):
            self._spawn(self._get_stats(conn))
        elif isinstance(request, AuthRequest):
            self._spawn(self._auth_message(conn, request.token))
        elif isinstance(request, ResumeRequest):
            self._spawn(self._resume(conn, request))

    # -- authentication ---------------------------------------------------------------------
    async def _verify(self, conn: Connection, token: str) -> Principal:
        """Verify ``token`` and adopt it; drop groups the new token no longer allows."""
        assert conn.auth is not None
        principal = await self.authn.verify(token)
        revoked = conn.auth.authenticate(principal, now=time.time())
        conn.user = principal.subject
        for group in revoked:
            self.index.unsubscribe(conn, group)
        if revoked or Group.ALL in self.index.subscriptions(conn):
            self._regrant(conn)
        return principal

    def _regrant(self, conn: Connection) -> None:
        """Re-apply every subscription under the connection's current permissions."""
        for sub in self.index.subscriptions(conn).values():
            self.index.subscribe(conn, self._granted(conn, sub))

    def _granted(self, conn: Connection, sub: Subscription) -> Subscription:
        if sub.group is not Group.ALL or conn.auth is None:
            return sub
        allowed = conn.auth.grant(Group.ALL)
        only = None if allowed >= set(DATA_GROUPS) else allowed
        return Subscription(sub.group, sub.symbols, sub.max_rate_hz, only)

    async def _auth_message(self, conn: Connection, token: str) -> None:
        try:
            principal = await self._verify(conn, token)
        except AuthError as err:
            self._auth_failed(conn, err, close=False)
            return
        m.AUTH_RESULTS.labels("ok").inc()
        expires = utc_timestamp(principal.expires_at) if principal.expires_at else None
        groups = sorted(principal.groups, key=list(Group).index)
        self._reply(
            conn, dumps(AuthOk(subject=principal.subject, groups=groups, expires_at=expires))
        )

    async def _handshake_auth(self, conn: Connection, token: str) -> None:
        try:
            await self._verify(conn, token)
        except AuthError as err:
            self._auth_failed(conn, err, close=True)
            return
        m.AUTH_RESULTS.labels("ok").inc()
        held, conn.inbox = conn.inbox or [], None
        for data in held:
            self.on_message(conn, data)

    def _auth_failed(self, conn: Connection, err: AuthError, *, close: bool) -> None:
        m.AUTH_RESULTS.labels(err.reason).inc()
        self._error(conn, ProtocolError(err.code, str(err), "auth"))
        if close:
            conn.inbox = None
            self._close(conn, CloseCode.AUTH_FAILED, "authentication failed")

    def _subscribe(self, conn: Connection, request: SubscribeRequest) -> None:
        refused = conn.auth.check_subscribe(request.group) if conn.auth else None
        if refused is not None:
            text = {
                "auth_required": 'authenticate first: send {"type": "auth", "token": ...}',
                "forbidden": f"your token does not allow the group '{request.group.value}'",
            }.get(refused, "refused")
            self._error(conn, ProtocolError(refused, text, "subscribe"))
            return
        symbols = frozenset(request.symbols) if request.symbols else None
        sub = self._granted(conn, Subscription(request.group, symbols, request.max_rate_hz))
        current = self.index.subscriptions(conn)
        current[request.group] = sub
        if (
            sum(subscription_weight(s.symbols) for s in current.values())
            > self.settings.limits.max_subscriptions
        ):
            limit = self.settings.limits.max_subscriptions
            self._error(
                conn,
                ProtocolError(
                    "too_many_subscriptions",
                    f"at most {limit} subscriptions (a symbol counts one)",
                    "subscribe",
                ),
            )
            return
        self.index.subscribe(conn, sub)
        self._apply_throttle(conn)
        self._save_subscriptions(conn)
        self._reply(conn, dumps(Subscribed(group=request.group, symbols=request.symbols)))
        self._send_snapshot(conn, sub)

    def _apply_throttle(self, conn: Connection) -> None:
        """Turn the subscriptions' ``max_rate_hz`` into the connection's per-key intervals."""
        conn.throttle.clear()
        for sub in self.index.subscriptions(conn).values():
            if sub.max_rate_hz:
                kinds = ("p", "m") if sub.group is Group.ALL else _KEY_KIND.get(sub.group, ())
                for kind in kinds:
                    conn.throttle[kind] = max(conn.throttle.get(kind, 0.0), 1.0 / sub.max_rate_hz)

    def _save_subscriptions(self, conn: Connection) -> None:
        """Keep the session's subscriptions in KV so that any edge can restore them on resume."""
        if self.subscriptions_kv is None or not self.link.is_connected:
            return
        record = {
            "user": conn.user,
            "subscriptions": [
                {
                    "group": sub.group.value,
                    "symbols": sorted(sub.symbols) if sub.symbols is not None else None,
                    "max_rate_hz": sub.max_rate_hz,
                }
                for sub in self.index.subscriptions(conn).values()
            ],
        }
        self._spawn(self.subscriptions_kv.put(conn.session_id, orjson.dumps(record)))

    async def _load_subscriptions(self, session_id: str) -> dict[str, Any] | None:
        if self.subscriptions_kv is None:
            return None
        try:
            entry = await self.subscriptions_kv.get(session_id)
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        record: dict[str, Any] = orjson.loads(entry.value)
        return record

    # -- resume ---------------------------------------------------------------------------
    async def _resume(self, conn: Connection, request: ResumeRequest) -> None:
        """Replay every message after the client's ``last_seq``, once and in order, then go live.

        The part still in memory is replayed and the client goes live in one event-loop turn,
        so no live message can fall between them; an older part, if any, comes from JetStream
        first. If a group's history no longer reaches back (or the session is unknown), the
        client gets ``resume_failed`` and fresh snapshots of its groups instead.
        """
        record = None
        if self.link.is_connected:
            try:
                record = await self._load_subscriptions(request.session_id)
            except Exception:  # a KV hiccup only fails the resume
                log.warning("subscription lookup failed", exc_info=True)
        reason = None
        if record is None:
            reason = "unknown or expired session"
        elif record.get("user") != conn.user:
            reason = "session belongs to another user"
            record = None
        subs = [
            self._granted(conn, sub)
            for sub in _subscriptions_from(record, request)
            if conn.auth is None or conn.auth.check_subscribe(sub.group) is None
        ]
        if not conn.is_open:
            return
        if reason is None:
            self._adopt(conn, request.session_id)
        else:
            self._commit_session(conn)
        replayed: dict[Group, int] = {}
        cursors: dict[Group, int] = {}
        for sub in subs if reason is None else ():
            for group in _groups_of(sub.group):
                if sub.only is not None and group not in sub.only:
                    continue
                after = request.last_seq.get(group, request.last_seq.get(Group.ALL))
                if after is None or group in cursors:
                    continue
                symbols = sub.symbols if group is Group.PRICES else None
                fetched = await self._replay_from_stream(conn, group, after, symbols)
                if fetched is None:
                    reason = f"history of {group.value} no longer reaches seq {after}"
                    break
                cursors[group], replayed[group] = fetched
        if not conn.is_open:
            return
        # No await from here on: the memory part of the replay and going live are one step.
        for sub in subs:
            self.index.subscribe(conn, sub)
            for group in _groups_of(sub.group) if reason is None else ():
                if group not in cursors or (sub.only is not None and group not in sub.only):
                    continue
                symbols = sub.symbols if group is Group.PRICES else None
                for item in self.history[group].after(cursors[group], symbols):
                    conn.send(item.frame, None, item.seq)
                    replayed[group] += 1
                cursors[group] = max(cursors[group], self.history[group].last_seq)
        self._apply_throttle(conn)
        self._save_subscriptions(conn)
        total = sum(replayed.values())
        self.messages_sent += total
        m.MESSAGES_SENT.inc(total)
        if reason is None:
            done = Resumed(session_id=conn.session_id, replayed=replayed, last_seq=cursors)
            self._reply(conn, dumps(done))
            return
        self._reply(conn, dumps(ResumeFailed(reason=reason, session_id=request.session_id)))
        for sub in subs:
            self._send_snapshot(conn, sub)

    def _adopt(self, conn: Connection, session_id: str) -> None:
        """The new connection takes over the old session; the old connection, if here, goes."""
        other = self.by_session.get(session_id)
        if other is not None and other is not conn:
            self.superseded.add(other)
            other.close(1000, "session resumed on a new connection")
        del self.by_session[conn.session_id]
        conn.session_id = session_id
        self.by_session[session_id] = conn
        self._commit_session(conn, resumed=True)

    async def _replay_from_stream(
        self, conn: Connection, group: Group, after: int, symbols: frozenset[str] | None
    ) -> tuple[int, int] | None:
        """Send what memory no longer holds, from JetStream: (cursor, count), or None if gone."""
        history = self.history[group]
        cursor, sent = after, 0
        stream = self.subjects.stream(group)
        while not history.covers(cursor):
            state = (await self.js.stream_info(stream)).state
            if state.last_seq <= cursor:
                break
            if state.first_seq > cursor + 1:
                return None
            psub = await self.js.pull_subscribe(
                self.subjects.stream_subject(group),
                stream=stream,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=cursor + 1,
                    ack_policy=AckPolicy.NONE,
                    inactive_threshold=30.0,
                ),
            )
            try:
                while cursor < state.last_seq and not history.covers(cursor):
                    for msg in await psub.fetch(batch=256, timeout=5):
                        seq = msg.metadata.sequence.stream
                        cursor = max(cursor, seq)
                        item = self._decode(group, msg.subject, seq, msg.data)
                        if item is not None and (symbols is None or item.symbol in symbols):
                            conn.send(item.frame, None, seq)
                            sent += 1
            finally:
                await psub.unsubscribe()
        return cursor, sent

    def _send_snapshot(self, conn: Connection, sub: Subscription) -> None:
        symbols = sub.symbols
        groups = [g for g in _groups_of(sub.group) if sub.only is None or g in sub.only]
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
        request = StatsRequest(edge_id=self.edge_id, report=self.report(sessions=False))
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

    def _want_initial_stats(self, conn: Connection) -> None:
        """A new client learns the online count at once, not at the next 30 s tick.

        Clients that connect together (a reconnect storm after a deploy) share one request.
        """
        self.stats_waiters.append(conn)
        if len(self.stats_waiters) == 1:
            self._spawn(self._initial_stats())

    async def _initial_stats(self) -> None:
        await asyncio.sleep(0.05)
        waiters, self.stats_waiters = self.stats_waiters, []
        data = await self._ask_stats()
        if data is None:
            return
        body = orjson.loads(data)
        if isinstance(body, dict) and body.get("type") == "stats":
            body["type"] = "stats_update"
            frame = text_frame(orjson.dumps(body))
            self._fanout([c for c in waiters if c.is_open], frame, _STATS_KEY)


def _wall(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())


_KEY_KIND: dict[Group, tuple[str, ...]] = {Group.PRICES: ("p",), Group.MARKET: ("m",)}


def _groups_of(group: Group) -> tuple[Group, ...]:
    return DATA_GROUPS if group is Group.ALL else (group,)


def _subscriptions_from(
    record: dict[str, Any] | None, request: ResumeRequest
) -> list[Subscription]:
    """The subscriptions to restore: the stored ones, else the groups named in ``last_seq``."""
    if record is None:
        return [Subscription(group) for group in request.last_seq]
    return [
        Subscription(
            Group(item["group"]),
            frozenset(item["symbols"]) if item.get("symbols") is not None else None,
            item.get("max_rate_hz"),
        )
        for item in record.get("subscriptions", [])
    ]
