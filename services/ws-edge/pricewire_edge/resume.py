"""Resume and replay: a reconnecting client gets every message it missed, once and in order.

:class:`Resumer` (built by :class:`~pricewire_edge.handlers.ClientHandlers`) handles ``resume``;
the rest of the module is the token, the KV record and the replay plan, all pure.

Who may resume. A session id is public: ``GET /api/sessions`` lists every live one, and it
appears in logs and events. So the id proves nothing. Each session also has a private
``resume_token`` (192 bits from the OS CSPRNG), sent in its ``welcome`` to its own client and
nowhere else. The edge keeps only its SHA-256, in the session's record in the subscriptions KV
bucket, so that any edge can check it. A ``resume`` without the right token gets
``resume_failed`` with reason ``invalid_resume_token``, and the session's real connection is left
alone. A successful resume rotates the token (``resumed.resume_token``): the old one is dead.

How nothing is lost. The part of the history still in the edge's memory is replayed, and the
client is subscribed, in one event-loop turn with no await in between, so no live message can
fall between the two. An older part comes from JetStream first. Every await (a fetch, the
stream's info, another group's replay) lets the memory ring turn over, so after the awaits the
edge checks again, synchronously, that memory still reaches each group's cursor, and goes back to
JetStream for any group it no longer reaches, until every group is covered in the same turn.

Failures. Any NATS or stream error during a resume (KV lookup, stream info, fetch, a replay that
cannot catch up) ends in ``resume_failed`` with reason ``unavailable`` or ``history_gone``, the
client subscribed afresh to its groups and sent their snapshots; the connection stays open.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError

from pricewire_common.encoding import dumps
from pricewire_contracts import DATA_GROUPS, Group, Resumed, ResumeFailed, ResumeRequest

from . import metrics as m
from .subscriptions import Subscription
from .tasks import spawn

if TYPE_CHECKING:
    from pricewire_common.natsconn import NatsLink

    from .connection import Connection
    from .fanout import Fanout
    from .subscriptions import SubscriptionIndex

__all__ = [
    "ResumeError",
    "Resumer",
    "new_resume_token",
    "subscriptions_record",
    "token_matches",
]

log = logging.getLogger("pricewire.edge.resume")

#: Rounds of "replay from JetStream, then check memory again" before a resume gives up. Each
#: round only replays what the ring lost during the previous one, so two are the usual case.
_MAX_ROUNDS = 8
#: A resume that has not caught up with live delivery in this time fails (``unavailable``).
_REPLAY_DEADLINE_S = 15.0
_FETCH_BATCH = 256
_FETCH_TIMEOUT_S = 2.0


def new_resume_token() -> tuple[str, bytes]:
    """A fresh secret for a session: (token for the client, digest to keep)."""
    # secrets.token_urlsafe(24) without its detour: 192 bits, 32 URL-safe characters, no padding
    token = base64.urlsafe_b64encode(os.urandom(24)).decode()
    return token, _digest(token)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_matches(stored_hex: object, token: str | None) -> bool:
    """True if ``token`` is the secret whose digest the session record holds (constant time)."""
    if not isinstance(stored_hex, str) or not token:
        return False
    try:
        stored = bytes.fromhex(stored_hex)
    except ValueError:
        return False
    return hmac.compare_digest(stored, _digest(token))


def subscriptions_record(
    user: str | None, resume_hash: bytes, subs: list[Subscription]
) -> dict[str, Any]:
    """A session as the KV bucket keeps it: owner, token digest, subscriptions."""
    return {
        "user": user,
        "token_sha256": resume_hash.hex(),
        "subscriptions": [
            {
                "group": sub.group.value,
                "symbols": sorted(sub.symbols) if sub.symbols is not None else None,
                "max_rate_hz": sub.max_rate_hz,
            }
            for sub in subs
        ],
    }


class ResumeError(Exception):
    """A resume that cannot go on; ``reason`` is the ``resume_failed`` reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class _Replay:
    """One group to replay: after which seq, narrowed to which symbols."""

    after: int
    symbols: frozenset[str] | None
    cursor: int = 0
    sent: int = 0


class ResumeSessions(Protocol):
    """What a resume needs of the sessions (:class:`~pricewire_edge.sessions.Sessions`)."""

    def commit(self, conn: Connection, *, resumed: bool = False) -> None: ...
    def adopt(self, conn: Connection, session_id: str) -> None: ...


class ResumeSubscriptions(Protocol):
    """What a resume needs of the client handlers (:class:`~pricewire_edge.handlers.ClientHandlers`)."""

    def granted(self, conn: Connection, sub: Subscription) -> Subscription: ...
    def apply_throttle(self, conn: Connection) -> None: ...
    def save_subscriptions(self, conn: Connection) -> None: ...
    async def records_landed(self, session_id: str) -> None: ...
    def send_snapshot(self, conn: Connection, sub: Subscription) -> None: ...


class Resumer:
    """Handles ``resume`` for one edge.

    ``fanout`` has the histories, the JetStream handle and the subscriptions KV bucket, and
    sends the replies; ``sessions`` commits or adopts the session; ``subs`` applies the
    client's subscriptions (permissions, throttle, KV record, snapshots).
    """

    def __init__(
        self,
        *,
        link: NatsLink,
        index: SubscriptionIndex[Connection],
        fanout: Fanout,
        sessions: ResumeSessions,
        subs: ResumeSubscriptions,
    ) -> None:
        self.link = link
        self.index = index
        self.fanout = fanout
        self.sessions = sessions
        self.subs = subs

    async def resume(self, conn: Connection, request: ResumeRequest) -> None:
        try:
            record = await self._owned_record(conn, request)
        except ResumeError as err:
            failure: ResumeError | None = err
            subs = [Subscription(group) for group in request.last_seq]
        else:
            failure = None
            subs = _subscriptions_from(record)
        subs = [
            self.subs.granted(conn, sub)
            for sub in subs
            if conn.auth is None or conn.auth.check_subscribe(sub.group) is None
        ]
        plan = _plan(subs, request.last_seq)
        if failure is None and conn.is_open:
            try:
                async with asyncio.timeout(_REPLAY_DEADLINE_S):
                    await self._catch_up(conn, plan)
            except ResumeError as err:
                failure = err
            except Exception as exc:  # any NATS or stream error: say so, keep the client
                log.warning(
                    "resume replay failed", extra={"session_id": conn.session_id}, exc_info=True
                )
                failure = ResumeError(
                    "unavailable", f"the replay failed ({type(exc).__name__}); try later"
                )
        if not conn.is_open:
            return
        if failure is not None:
            # The client keeps the fresh session of its welcome (id and token), as before.
            self.sessions.commit(conn)
            self._fail(conn, request, subs, failure)
            return
        # No await from here on: _catch_up's last check that memory covers every cursor, taking
        # the session over, the memory part of the replay and going live are one step.
        self.sessions.adopt(conn, request.session_id)
        for sub in subs:
            self.index.subscribe(conn, sub)
        replayed: dict[Group, int] = {}
        cursors: dict[Group, int] = {}
        for group, step in plan.items():
            history = self.fanout.history[group]
            for item in history.after(step.cursor, step.symbols):
                conn.send(item.frame, None, item.seq)
                step.sent += 1
            replayed[group] = step.sent
            cursors[group] = max(step.cursor, history.last_seq)
        token, conn.resume_hash = new_resume_token()
        self.subs.apply_throttle(conn)
        self.subs.save_subscriptions(conn)
        self.fanout.count_sent(sum(replayed.values()))
        m.RESUMES.labels("ok").inc()
        done = Resumed(
            session_id=conn.session_id, resume_token=token, replayed=replayed, last_seq=cursors
        )
        self.fanout.reply(conn, dumps(done))

    async def _owned_record(self, conn: Connection, request: ResumeRequest) -> dict[str, Any]:
        """The session's stored record, if this client proves it owns the session."""
        kv = self.fanout.subscriptions_kv
        if kv is None or not self.link.is_connected:
            raise ResumeError("unavailable", "the session store is not reachable; try later")
        try:
            # a record this edge is still writing (coalesced per loop turn) lands first
            await self.subs.records_landed(request.session_id)
            entry = await kv.get(request.session_id)
        except KeyNotFoundError:
            entry = None
        except Exception as exc:
            log.warning("session lookup failed", exc_info=True)
            raise ResumeError(
                "unavailable", f"the session store failed ({type(exc).__name__}); try later"
            ) from exc
        record = orjson.loads(entry.value) if entry is not None and entry.value else None
        if not isinstance(record, dict):
            raise ResumeError("unknown_session", "unknown or expired session")
        if not token_matches(record.get("token_sha256"), request.resume_token):
            raise ResumeError(
                "invalid_resume_token", "resume needs the resume_token this session was given"
            )
        if record.get("user") != conn.user:
            raise ResumeError("wrong_user", "the session belongs to another user")
        return record

    async def _catch_up(self, conn: Connection, plan: dict[Group, _Replay]) -> None:
        """Replay from JetStream until memory reaches every group's cursor, checked last."""
        history = self.fanout.history
        for _ in range(_MAX_ROUNDS):
            behind = [g for g, step in plan.items() if not history[g].covers(step.cursor)]
            if not behind:
                return  # the caller continues in this same event-loop turn
            for group in behind:
                await self._replay_from_stream(conn, group, plan[group])
                if not conn.is_open:
                    return
        raise ResumeError("unavailable", "the replay could not catch up with live data; try later")

    async def _replay_from_stream(self, conn: Connection, group: Group, step: _Replay) -> None:
        """Send what memory no longer holds from JetStream, until memory reaches the cursor."""
        history = self.fanout.history[group]
        stream = self.fanout.subjects.stream(group)
        state = (await self.fanout.js.stream_info(stream)).state
        if state.last_seq <= step.cursor:
            return  # the stream has nothing newer; memory has the rest, if anything
        if state.first_seq > step.cursor + 1:
            raise ResumeError(
                "history_gone", f"the history of {group.value} no longer reaches seq {step.cursor}"
            )
        psub = await self.fanout.js.pull_subscribe(
            self.fanout.subjects.stream_subject(group),
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=step.cursor + 1,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
            ),
        )
        try:
            while not history.covers(step.cursor):
                for msg in await psub.fetch(batch=_FETCH_BATCH, timeout=_FETCH_TIMEOUT_S):
                    seq = msg.metadata.sequence.stream
                    if seq <= step.cursor:
                        continue
                    step.cursor = seq
                    item = self.fanout.decode(group, msg.subject, seq, msg.data)
                    if item is not None and (step.symbols is None or item.symbol in step.symbols):
                        conn.send(item.frame, None, seq)
                        step.sent += 1
        finally:
            # Not awaited: the caller's coverage check must not wait behind it.
            spawn(psub.unsubscribe())

    def _fail(
        self,
        conn: Connection,
        request: ResumeRequest,
        subs: list[Subscription],
        failure: ResumeError,
    ) -> None:
        """``resume_failed``, then the client's groups afresh, with their snapshots."""
        m.RESUMES.labels(failure.reason).inc()
        for sub in subs:
            self.index.subscribe(conn, sub)
        self.subs.apply_throttle(conn)
        self.subs.save_subscriptions(conn)
        failed = ResumeFailed(
            reason=failure.reason, detail=failure.detail, session_id=request.session_id
        )
        self.fanout.reply(conn, dumps(failed))
        for sub in subs:
            self.subs.send_snapshot(conn, sub)


def groups_of(group: Group) -> tuple[Group, ...]:
    return DATA_GROUPS if group is Group.ALL else (group,)


def _plan(subs: list[Subscription], last_seq: dict[Group, int]) -> dict[Group, _Replay]:
    """The groups to replay: each data group a subscription covers and ``last_seq`` names."""
    plan: dict[Group, _Replay] = {}
    for sub in subs:
        for group in groups_of(sub.group):
            if (sub.only is not None and group not in sub.only) or group in plan:
                continue
            after = last_seq.get(group, last_seq.get(Group.ALL))
            if after is not None:
                symbols = sub.symbols if group is Group.PRICES else None
                plan[group] = _Replay(after=after, symbols=symbols, cursor=after)
    return plan


def _subscriptions_from(record: dict[str, Any]) -> list[Subscription]:
    return [
        Subscription(
            Group(item["group"]),
            frozenset(item["symbols"]) if item.get("symbols") is not None else None,
            item.get("max_rate_hz"),
        )
        for item in record.get("subscriptions", [])
    ]
