"""Client messages: rate check, parse, dispatch; subscribe, unsubscribe, auth, ping, stats.

:class:`ClientHandlers` owns what a connection's subscriptions mean for it: the permissions
they are granted under (:meth:`~ClientHandlers.granted`), the per-stream intervals of their
``max_rate_hz`` (:meth:`~ClientHandlers.apply_throttle`), their record in the subscriptions KV
bucket (:meth:`~ClientHandlers.save_subscriptions`, for a resume on any edge) and the snapshot
a new subscription starts with (:meth:`~ClientHandlers.send_snapshot`). A token checked at the
handshake holds the client's first messages (``conn.inbox``) until it is verified.
``resume`` goes to the :class:`~pricewire_edge.resume.Resumer`, built here.
"""

from __future__ import annotations

import time

import orjson

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_contracts import (
    DATA_GROUPS,
    AuthOk,
    AuthRequest,
    ClientMessage,
    CloseCode,
    GetStatsRequest,
    Group,
    PingRequest,
    PongMessage,
    ResumeRequest,
    SubscribeRequest,
    Unsubscribed,
    UnsubscribeRequest,
    utc_timestamp,
)

from . import metrics as m
from .auth import Authenticator, AuthError, Principal
from .connection import Connection
from .fanout import Fanout
from .frame_keys import THROTTLED, Stream
from .limits import RateDecision, subscription_weight
from .protocol import ProtocolError, parse_client_message
from .record_writer import RecordWriter
from .resume import Resumer, groups_of, subscriptions_record
from .sessions import Sessions
from .settings import EdgeSettings
from .stats_requests import StatsRequests
from .subscriptions import Subscription, SubscriptionIndex
from .tasks import spawn

__all__ = ["ClientHandlers"]

#: What a subscription's max_rate_hz slows down; control traffic is never in here.
_THROTTLED_BY_GROUP: dict[Group, tuple[Stream, ...]] = {
    Group.PRICES: (Stream.PRICE,),
    Group.MARKET: (Stream.MARKET,),
}


class ClientHandlers:
    """Every message a client sends, from :meth:`on_message` on."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        link: NatsLink,
        index: SubscriptionIndex[Connection],
        authn: Authenticator,
        fanout: Fanout,
        sessions: Sessions,
        stats: StatsRequests,
    ) -> None:
        self.settings = settings
        self.link = link
        self.index = index
        self.authn = authn
        self.fanout = fanout
        self.sessions = sessions
        self.stats = stats
        # one KV write per session per loop turn, acknowledged without a task per write
        self.records: RecordWriter[Connection] = RecordWriter(
            sessions.ledger.publisher, self._record
        )
        self.resumer = Resumer(link=link, index=index, fanout=fanout, sessions=sessions, subs=self)

    def on_message(self, conn: Connection, data: bytes) -> None:
        if conn not in self.sessions.connections:
            return
        if conn.inbox is not None:  # the handshake token is being checked
            if len(conn.inbox) < self.settings.limits.message_burst:
                conn.inbox.append(data)
            return
        self.sessions.received(conn)
        if conn.rate is not None:
            decision = conn.rate.check(time.monotonic())
            if decision is RateDecision.CLOSE:
                self.sessions.close(conn, CloseCode.RATE_LIMITED, "message rate limit exceeded")
                return
            if decision is RateDecision.WARN:
                self.fanout.error(
                    conn, ProtocolError("rate_limited", "too many messages; slow down")
                )
                return
        request = parse_client_message(data)
        if not conn.committed and not isinstance(request, ResumeRequest):
            self.sessions.commit(conn)
        if isinstance(request, ProtocolError):
            self.fanout.error(conn, request)
        else:
            self._handle(conn, request)

    def _handle(self, conn: Connection, request: ClientMessage) -> None:
        if isinstance(request, SubscribeRequest):
            self._subscribe(conn, request)
        elif isinstance(request, UnsubscribeRequest):
            self.index.unsubscribe(conn, request.group)
            self.apply_throttle(conn)
            self.save_subscriptions(conn)
            self.fanout.reply(conn, dumps(Unsubscribed(group=request.group)))
        elif isinstance(request, PingRequest):
            self.fanout.reply(conn, dumps(PongMessage()))
        elif isinstance(request, GetStatsRequest):
            spawn(self.stats.get_stats(conn))
        elif isinstance(request, AuthRequest):
            spawn(self._auth_message(conn, request.token))
        elif isinstance(request, ResumeRequest):
            spawn(self.resumer.resume(conn, request))

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
            self.index.subscribe(conn, self.granted(conn, sub))

    def granted(self, conn: Connection, sub: Subscription) -> Subscription:
        if sub.group is not Group.ALL or conn.auth is None:
            return sub
        allowed = conn.auth.grant(Group.ALL)
        only = None if allowed >= set(DATA_GROUPS) else allowed
        return Subscription(sub.group, sub.symbols, sub.max_rate_hz, only)

    async def _auth_message(self, conn: Connection, token: str) -> None:
        try:
            principal = await self._verify(conn, token)
        except AuthError as err:
            self.auth_failed(conn, err, close=False)
            return
        m.AUTH_RESULTS.labels("ok").inc()
        expires = utc_timestamp(principal.expires_at) if principal.expires_at else None
        groups = sorted(principal.groups, key=list(Group).index)
        self.fanout.reply(
            conn, dumps(AuthOk(subject=principal.subject, groups=groups, expires_at=expires))
        )

    async def handshake_auth(self, conn: Connection, token: str) -> None:
        """The token offered at the handshake; the messages held meanwhile are handled after."""
        try:
            await self._verify(conn, token)
        except AuthError as err:
            self.auth_failed(conn, err, close=True)
            return
        m.AUTH_RESULTS.labels("ok").inc()
        held, conn.inbox = conn.inbox or [], None
        for data in held:
            self.on_message(conn, data)

    def auth_failed(self, conn: Connection, err: AuthError, *, close: bool) -> None:
        m.AUTH_RESULTS.labels(err.reason).inc()
        self.fanout.error(conn, ProtocolError(err.code, str(err), "auth"))
        if close:
            conn.inbox = None
            self.sessions.close(conn, CloseCode.AUTH_FAILED, "authentication failed")

    # -- subscriptions ----------------------------------------------------------------------
    def _subscribe(self, conn: Connection, request: SubscribeRequest) -> None:
        refused = conn.auth.check_subscribe(request.group) if conn.auth else None
        if refused is not None:
            text = {
                "auth_required": 'authenticate first: send {"type": "auth", "token": ...}',
                "forbidden": f"your token does not allow the group '{request.group.value}'",
            }.get(refused, "refused")
            self.fanout.error(conn, ProtocolError(refused, text, "subscribe"))
            return
        symbols = frozenset(request.symbols) if request.symbols else None
        sub = self.granted(conn, Subscription(request.group, symbols, request.max_rate_hz))
        current = self.index.subscriptions(conn)
        current[request.group] = sub
        if (
            sum(subscription_weight(s.symbols) for s in current.values())
            > self.settings.limits.max_subscriptions
        ):
            limit = self.settings.limits.max_subscriptions
            self.fanout.error(
                conn,
                ProtocolError(
                    "too_many_subscriptions",
                    f"at most {limit} subscriptions (a symbol counts one)",
                    "subscribe",
                ),
            )
            return
        self.index.subscribe(conn, sub)
        self.apply_throttle(conn)
        self.save_subscriptions(conn)
        self.fanout.reply(conn, self.sessions.replies.subscribed(request.group, request.symbols))
        self.send_snapshot(conn, sub)

    def apply_throttle(self, conn: Connection) -> None:
        """Turn the subscriptions' ``max_rate_hz`` into the connection's per-key intervals."""
        conn.throttle.clear()
        for sub in self.index.subscriptions(conn).values():
            if sub.max_rate_hz:
                kinds = (
                    THROTTLED if sub.group is Group.ALL else _THROTTLED_BY_GROUP.get(sub.group, ())
                )
                for kind in kinds:
                    conn.throttle[kind] = max(conn.throttle.get(kind, 0.0), 1.0 / sub.max_rate_hz)
        conn.refresh_channels()  # throttled: its frames go one by one through send()

    def save_subscriptions(self, conn: Connection) -> None:
        """Keep the session in KV (owner, token digest, subscriptions) so any edge can resume it."""
        kv = self.fanout.subscriptions_kv
        if kv is None or not self.link.is_connected:
            return
        if not self.records.prefix:
            bucket = self.settings.subjects.subscriptions_bucket
            self.records.prefix = str(getattr(kv, "_pre", f"$KV.{bucket}."))
        self.records.save(conn)  # written at the end of this loop turn, once

    def refresh_records(self, conns: list[Connection]) -> None:
        """Rewrite the records of one slice of the sessions (the rota visits each session once
        per ``nats_history_s``).

        The bucket's TTL (2 x ``nats_history_s``) counts from a record's last write. Rewritten
        once per history window, a session subscribed for hours is still resumable, on any
        edge, for at least the history window after it drops, or after its edge dies.
        """
        for conn in conns:
            if conn.committed and not conn.closing and self.index.by_client.get(conn):
                self.save_subscriptions(conn)

    def _record(self, conn: Connection) -> bytes:
        subs = list(self.index.subscriptions(conn).values())
        return orjson.dumps(subscriptions_record(conn.user, conn.resume_hash, subs))

    async def records_landed(self, session_id: str) -> None:
        """Every write of this session's record so far is stored (or given up on)."""
        await self.records.landed(session_id, self.sessions.ledger.ack_timeout_s)

    def send_snapshot(self, conn: Connection, sub: Subscription) -> None:
        symbols = sub.symbols
        groups = [g for g in groups_of(sub.group) if sub.only is None or g in sub.only]
        history = self.fanout.history
        provider_stats = self.fanout.provider_stats
        frames: list[bytes] = []
        for g in groups:
            frames.extend(
                item.frame for item in history[g].snapshot(symbols if g is Group.PRICES else None)
            )
            if g is Group.MARKET and provider_stats is not None:
                frames.append(provider_stats)
        conn.send_many(frames)  # never throttled (no key); a slow client's backlog keeps them
        self.fanout.count_sent(len(frames))
