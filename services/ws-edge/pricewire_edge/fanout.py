"""NATS in, WebSocket frames out: the edge's intake and fan-out.

Data flow for one market-data message::

    JetStream ordered consumer (one per data group, per edge)
      -> seq added, JSON encoded once, WebSocket frame built once   (Fanout.on_data)
      -> kept in the group's history                                (history.GroupHistory)
      -> receivers found in the subscription index                  (subscriptions)
      -> appended once to the group's shared batch; the group's
         paused, throttled or symbol-narrowed receivers get it one by one (channels)
      -> written once per connection per loop turn                  (flusher)

:class:`Fanout` connects to NATS, owns the JetStream handle, the subscriptions KV bucket, the
per-group histories and the last provider stats, and counts every frame sent (fanned out, or
replied to one client with :meth:`Fanout.reply`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import orjson
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.kv import KeyValue

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_common.streams import ensure_kv, ensure_streams
from pricewire_contracts import DATA_GROUPS, ErrorMessage, Group, Heartbeat

from . import metrics as m
from .channels import Channel
from .connection import Connection
from .flusher import Flusher
from .frame_keys import (
    HEARTBEAT_KEY,
    MARKET_KEY,
    PROVIDER_STATS_KEY,
    STATS_KEY,
    FrameKey,
    price_key,
)
from .history import GroupHistory, Stored
from .protocol import ProtocolError, text_frame
from .session_ledger import SessionLedger
from .settings import EdgeSettings
from .subscriptions import SubscriptionIndex

__all__ = ["Fanout"]

log = logging.getLogger("pricewire.edge")

#: Ordered consumers live in the memory of one nats-server: when that server restarts or dies,
#: nothing tells the client; two missed heartbeats do, and nats-py recreates the consumer after
#: the last seq seen. nats-py's 5 s default left clients without prices for up to 10 s after
#: NATS came back; 0.5 s brings that under the 2 s the issue asks.
_ORDERED_HEARTBEAT_S = 0.5


class Fanout:
    """NATS intake (ordered consumers, stats, broadcasts) and the fan-out to connections.

    ``connections`` is the edge's set of open sessions (owned by
    :class:`~pricewire_edge.sessions.Sessions`; read here for the frames everyone gets).
    ``ledger`` answers the registry's session-list requests on this edge's subject.
    """

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        link: NatsLink,
        index: SubscriptionIndex[Connection],
        connections: set[Connection],
        ledger: SessionLedger,
    ) -> None:
        self.settings = settings
        self.subjects = settings.subjects
        self.link = link
        self.index = index
        self.connections = connections
        self.ledger = ledger
        self.history = {
            g: GroupHistory(g, maxlen=settings.history_messages, tail=self.tail(g))
            for g in DATA_GROUPS
        }
        self.provider_stats: bytes | None = None
        self.messages_sent = 0
        self.subscribed_nats = False
        self.js: Any = None
        self.subscriptions_kv: KeyValue | None = None
        self.flusher: Flusher  # set by the edge's start(), on its running loop

    def tail(self, group: Group) -> int:
        """How many of the group's latest messages a snapshot has (news, alerts; else 0)."""
        return {
            Group.NEWS: self.settings.snapshot_news,
            Group.ALERTS: self.settings.snapshot_alerts,
        }.get(group, 0)

    # -- NATS ---------------------------------------------------------------------------
    async def connect(self) -> None:
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
        edge_id = self.settings.instance_id
        await nc.subscribe(self.subjects.edge_sessions(edge_id), cb=self.ledger.on_request)
        await nc.flush()
        self.subscribed_nats = True
        log.info("edge subscribed to NATS", extra={"edge_id": edge_id})

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
        tail = self.tail(group)
        if group in (Group.NEWS, Group.ALERTS):
            if last and tail:
                start = max(first, last - tail + 1)
                policy = DeliverPolicy.BY_START_SEQUENCE
                config = ConsumerConfig(opt_start_seq=start)
                self.history[group].complete_after = start - 1
            else:
                policy = DeliverPolicy.NEW

        async def on_msg(msg: Msg) -> None:
            self.on_data(group, msg.subject, msg.metadata.sequence.stream, msg.data)

        await js.subscribe(
            self.subjects.stream_subject(group),
            stream=stream,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
            idle_heartbeat=_ORDERED_HEARTBEAT_S,
            cb=on_msg,
        )

    def decode(self, group: Group, subject: str, seq: int, data: bytes) -> Stored | None:
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

    def on_data(self, group: Group, subject: str, seq: int, data: bytes) -> None:
        started = time.perf_counter()
        item = self.decode(group, subject, seq, data)
        if item is None or not self.history[group].add(item):
            return  # malformed, or a replay of something already delivered (consumer recreated)
        symbol = item.symbol
        key = price_key(symbol) if symbol else (MARKET_KEY if group is Group.MARKET else None)
        whole = self.index.whole[group]
        if isinstance(whole, Channel):
            # the whole group's receivers: one append to its shared batch (see channels.py)
            n = whole.publish(item.frame, key, seq)
            self.messages_sent += n
            narrowed = self.index.by_symbol.get(symbol) if symbol is not None else None
            if narrowed:
                self.fanout([c for c in narrowed if c not in whole], item.frame, key, seq)
        else:
            narrowed_to = symbol is not None and symbol in self.index.by_symbol
            receivers = self.index.receivers(group, symbol) if narrowed_to else whole
            self.fanout(receivers, item.frame, key, seq)
        m.FANOUT_MESSAGES.labels(group.value).inc()
        m.FANOUT_LATENCY.observe(time.perf_counter() - started)

    def fanout(
        self, receivers: Iterable[Connection], frame: bytes, key: FrameKey | None, seq: int = 0
    ) -> None:
        n = 0
        mark = self.flusher.mark
        for conn in receivers:
            n += 1
            if conn.paused or conn.throttle or conn.closing or conn.channels:
                conn.send(frame, key, seq)  # (a channel member: its share goes first)
                continue
            conn.pending.append(frame)  # Connection.send's fast path, inlined: the hot loop
            if not conn.marked:
                conn.marked = True
                mark(conn)
        self.messages_sent += n

    async def _on_stats_update(self, msg: Msg) -> None:
        self.fanout(self.connections, text_frame(msg.data), STATS_KEY)

    async def _on_provider_stats(self, msg: Msg) -> None:
        self.provider_stats = text_frame(msg.data)
        self.fanout(self.index.receivers(Group.MARKET), self.provider_stats, PROVIDER_STATS_KEY)

    async def _on_broadcast(self, msg: Msg) -> None:
        group = Group(msg.subject.rsplit(".", 1)[1])
        frame = text_frame(msg.data)
        receivers = self.connections if group is Group.ALL else self.index.receivers(group)
        self.fanout(receivers, frame, None)

    def heartbeat(self, conns: list[Connection]) -> None:
        """A heartbeat to one slot of the rota (each client once per ``heartbeat_interval_s``)."""
        self.fanout(conns, text_frame(dumps(Heartbeat())), HEARTBEAT_KEY)

    # -- one client ---------------------------------------------------------------------
    def reply(self, conn: Connection, payload: bytes) -> None:
        """A reply or error to one client (never throttled or held back), counted as sent."""
        conn.send_now(payload)
        self.messages_sent += 1

    def error(self, conn: Connection, err: ProtocolError) -> None:
        m.CLIENT_ERRORS.labels(err.code).inc()
        msg = ErrorMessage(code=err.code, message=err.message, request_type=err.request_type)
        self.reply(conn, dumps(msg))

    def count_sent(self, n: int) -> None:
        self.messages_sent += n
