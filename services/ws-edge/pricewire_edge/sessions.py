"""Sessions: open, commit, close, adopt; the edge's report and activity; the sweep and pings.

A session is opened at the upgrade (:meth:`Sessions.open`: id, resume token, ``welcome``) and
*committed* (counted, and announced as ``session_opened``) at its first message or after
``session_commit_s``, whichever comes first, so that a reconnecting client whose first message
is ``resume`` keeps its old session (:meth:`Sessions.adopt`) instead of being counted as new.
Every open, resume and close goes through the :class:`~pricewire_edge.session_ledger.SessionLedger`.

:class:`Sessions` owns the set of open connections, the index by session id, the slow set (for
the sweep), and the counters of the edge's :class:`~pricewire_contracts.EdgeReport`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_contracts import (
    ClientType,
    CloseCode,
    EdgeReport,
    SessionActivity,
    SessionClosed,
    utc_timestamp,
)

from . import metrics as m
from .auth import AuthSession
from .connection import Connection
from .fanout import Fanout
from .replies import Replies, session_opened
from .resume import new_resume_token
from .rota import Rota
from .session_ledger import SessionLedger
from .settings import EdgeSettings
from .subscriptions import SubscriptionIndex
from .tasks import spawn

__all__ = ["Sessions"]

log = logging.getLogger("pricewire.edge")

#: An unmasked WebSocket ping with no payload; the same bytes for every client.
_PING_FRAME = b"\x89\x00"


class Sessions:
    """The edge's sessions and their life cycle.

    ``connections`` is shared with the fan-out (which only reads it); ``draining`` says
    whether the edge is shutting down (a close is then reported as ``edge_draining``).
    """

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        boot_id: str,
        link: NatsLink,
        ledger: SessionLedger,
        index: SubscriptionIndex[Connection],
        connections: set[Connection],
        fanout: Fanout,
        draining: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.subjects = settings.subjects
        self.edge_id = settings.instance_id
        self.boot_id = boot_id
        self.link = link
        self.ledger = ledger
        self.index = index
        self.fanout = fanout
        self.draining = draining
        self.connections = connections
        self.by_session: dict[str, Connection] = {}
        self.slow: set[Connection] = set()
        self.superseded: set[Connection] = set()
        self.active_since_report: set[Connection] = set()
        self.client_types = dict.fromkeys(ClientType, 0)
        self.total_sessions = 0
        self.messages_received = 0
        self.report_sequence = 0
        self.replies = Replies()
        #: pings and heartbeats go to a slice of the connections at a time (rota.py)
        self.rota: Rota[Connection] = Rota()
        #: sessions opened in this loop turn, committed together session_commit_s later
        self._opened: list[Connection] | None = None

    # -- life of a session ----------------------------------------------------------------
    def open(self, conn: Connection, client_type: ClientType) -> None:
        conn.session_id = session_id = _new_session_id()
        conn.client_type = client_type
        conn.connected_at = conn.last_activity = now = time.time()
        conn.auth = AuthSession(self.settings.auth, connected_at=now)
        conn.rate = self.settings.limits.rate_limiter(now=time.monotonic())
        self.connections.add(conn)
        self.rota.add(conn)
        self.by_session[session_id] = conn
        self.client_types[client_type] += 1
        token, conn.resume_hash = new_resume_token()
        self.fanout.reply(conn, self.replies.welcome(session_id, token))
        # The session is announced at the first message or after a moment, whichever comes
        # first, so that a reconnecting client whose first message is ``resume`` keeps its old
        # session instead of being counted as a new one.
        opened = self._opened
        if opened is None:
            opened = self._opened = []
            asyncio.get_running_loop().call_soon(self._opened_this_turn)
        opened.append(conn)

    def _opened_this_turn(self) -> None:
        """One timer for the sessions opened in a loop turn (a connect storm opens hundreds per
        turn), rather than one each: each is committed ``session_commit_s`` after it opened,
        or a turn later than that."""
        batch, self._opened = self._opened or [], None
        asyncio.get_running_loop().call_later(
            self.settings.session_commit_s, self._commit_due, batch
        )

    def _commit_due(self, batch: list[Connection]) -> None:
        for conn in batch:
            self.commit(conn)

    def commit(self, conn: Connection, *, resumed: bool = False) -> None:
        if conn.committed or conn not in self.connections:
            return
        conn.committed = True
        if not resumed:
            self.total_sessions += 1
        opened = session_opened(  # = dumps(SessionOpened(...)), without the model
            session_id=conn.session_id,
            edge_id=self.edge_id,
            client_type=conn.client_type,
            connected_at=_stamp(conn.connected_at),
            resumed=resumed,
            user=conn.user,
            boot_id=self.boot_id,
            event_seq=self.ledger.next_seq(),
        )
        self.ledger.publish(self.subjects.session_opened, opened)
        log.info(
            "WebSocket session resumed" if resumed else "WebSocket connected",
            extra={
                "session_id": conn.session_id,
                "client_type": conn.client_type.value,
                "ip": conn.client_ip,
            },
        )

    def received(self, conn: Connection) -> None:
        """A message from the client: counted, and the session marked active."""
        self.messages_received += 1
        conn.last_activity = time.time()
        self.active_since_report.add(conn)

    def adopt(self, conn: Connection, session_id: str) -> None:
        """The new connection takes over the old session; the old connection, if here, goes."""
        other = self.by_session.get(session_id)
        if other is not None and other is not conn:
            self.superseded.add(other)
            other.close(1000, "session resumed on a new connection")
        del self.by_session[conn.session_id]
        conn.session_id = session_id
        self.by_session[session_id] = conn
        self.commit(conn, resumed=True)

    def close(self, conn: Connection, code: int, reason: str) -> None:
        """The edge closes a session (limits, auth, timeouts): counted and logged."""
        m.CLOSES.labels(str(code)).inc()
        log.info(
            "WebSocket closed by the edge",
            extra={"session_id": conn.session_id, "code": code, "reason": reason},
        )
        conn.close(code, reason)

    def on_close(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.commit(conn)  # a client gone within the commit delay still was a session
        self.connections.discard(conn)
        self.rota.discard(conn)
        if self.by_session.get(conn.session_id) is conn:
            del self.by_session[conn.session_id]
        self.slow.discard(conn)
        self.active_since_report.discard(conn)
        self.index.remove(conn)
        self.client_types[conn.client_type] -= 1
        code = conn.close_code_received
        if conn in self.superseded:
            self.superseded.discard(conn)  # its session lives on in a newer connection
            return
        closed = SessionClosed(
            session_id=conn.session_id,
            edge_id=self.edge_id,
            closed_at=utc_timestamp(),
            reason="edge_draining" if self.draining() else "client_closed",
            close_code=code,
            boot_id=self.boot_id,
            event_seq=self.ledger.next_seq(),
        )
        self.ledger.publish(self.subjects.session_closed, dumps(closed))
        log.info("WebSocket disconnected", extra={"session_id": conn.session_id, "code": code})

    # -- reports --------------------------------------------------------------------------
    def report(self) -> EdgeReport:
        """The edge's counters: the same size whatever the number of sessions (no list)."""
        return EdgeReport(
            edge_id=self.edge_id,
            boot_id=self.boot_id,
            sequence=self.report_sequence,
            report_interval_s=self.settings.report_interval_s,
            sent_at=utc_timestamp(),
            active_connections=len(self.connections),
            total_sessions=self.total_sessions,
            messages_sent=self.fanout.messages_sent,
            messages_received=self.messages_received,
            client_types={k: v for k, v in self.client_types.items() if v},
            subscriptions=self.index.group_counts(),
            session_events=self.ledger.published,
            session_events_unconfirmed=self.ledger.unconfirmed,
            draining=self.draining(),
        )

    async def reports(self) -> None:
        while True:
            await asyncio.sleep(self.settings.report_interval_s)
            if self.link.is_connected:
                self.publish_report()

    def publish_report(self) -> None:
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

    def _publish(self, subject: str, payload: bytes) -> None:
        """Fire and forget: nats-py buffers while reconnecting; before the first connect, drop."""
        if not self.link.connected.is_set():
            return
        spawn(self.link.nc.publish(subject, payload))

    # -- periodic checks --------------------------------------------------------------------
    async def sweep(self) -> None:
        """Once a second: slow clients (4009). (Deadlines: :meth:`check`, a slice at a time.)"""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for conn in [
                c for c in self.slow if c.paused_at < now - self.settings.slow_client_timeout_s
            ]:
                self.slow.discard(conn)
                m.SLOW_CLIENT_DROPS.inc()
                log.warning("WebSocket slow client closed", extra={"session_id": conn.session_id})
                # The Close frame skips the conflated backlog; a client that reads again within
                # limits.close_grace_s sees 4009, one that does not is aborted then.
                conn.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    def check(self, conns: list[Connection]) -> None:
        """Auth deadlines (4001/4010) and dead links (1011/4011) of one slot of the rota: each
        connection once a second, a twentieth of them at a time."""
        limits = self.settings.limits
        now = time.monotonic()
        wall = time.time()
        for conn in conns:
            silent = now - conn.last_seen
            if conn.auth is not None and (code := conn.auth.due(wall)) is not None:
                reason = (
                    "token expired" if code is CloseCode.TOKEN_EXPIRED else "authentication timeout"
                )
                self.close(conn, code, reason)
            elif silent > limits.idle_timeout_s:
                self.close(conn, CloseCode.IDLE_TIMEOUT, "idle timeout")
            elif silent > limits.ping_interval_s + limits.ping_timeout_s:
                self.close(conn, CloseCode.INTERNAL_ERROR, "ping timeout")
                conn.abort()  # half-open: nobody would read a close frame

    def ping(self, conns: list[Connection]) -> None:
        """WebSocket pings (to one slot of the rota: each connection once per
        ``ping_interval_s``): browsers and libraries answer by themselves; silence means
        half-open."""
        for conn in conns:
            conn.send_control(_PING_FRAME)  # never throttled, never conflated


def _new_session_id() -> str:
    """``str(uuid.uuid4())`` without the ``UUID`` object: 16 random bytes, the version (4)
    and variant (RFC 4122) bits set, in the 8-4-4-4-12 hex form."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _wall(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


_last_stamp: list[tuple[int, str]] = [(-1, "")]


def _stamp(ts: float) -> str:
    """``utc_timestamp`` of a wall-clock time, formatted once per second (a connect storm
    formats thousands within the same second)."""
    second = int(ts)
    last = _last_stamp[0]
    if last[0] != second:
        last = _last_stamp[0] = (second, utc_timestamp(_wall(second)))
    return last[1]
