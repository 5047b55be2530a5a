"""The registry's I/O: the durable consumer, edge reports, the sweeper, stats and broadcast.

Several replicas may run: they share one durable pull consumer (each event goes to one of
them), write the KV bucket with compare-and-set, and each keeps a mirror of the bucket for
reads. Sweeps (lost edges, old records) and reconciliations (an edge's session list, asked
only when :mod:`.liveness` says so) run on every replica; compare-and-set makes them
idempotent, so a session is counted closed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from pricewire_common.encoding import dumps, loads
from pricewire_common.natsconn import NatsLink
from pricewire_common.streams import ensure_kv, ensure_streams
from pricewire_contracts import (
    BroadcastMessage,
    ConnectionStats,
    EdgeReport,
    EdgeSessionList,
    EdgeSessionsRequest,
    SessionActivity,
    SessionClosed,
    SessionOpened,
    StatsMessage,
    StatsRequest,
    utc_now,
    utc_timestamp,
)

from .errors import StatsUnavailable
from .liveness import EdgeLiveness, ReconcileReason, unlisted
from .metrics import EVENTS, LIVE_SESSIONS, RECONCILIATIONS, SESSIONS_CLOSED, SESSIONS_OPENED
from .settings import RegistrySettings
from .store import SessionStore
from .table import Change, on_activity, on_closed, on_edge_lost, on_opened, session_key

__all__ = ["RegistryService"]

log = logging.getLogger("pricewire.registry")

_FETCH_BATCH = 64
_ACTIVITY_CONCURRENCY = 32
_GC_EVERY_S = 30.0


class RegistryService:
    def __init__(self, settings: RegistrySettings, link: NatsLink | None = None) -> None:
        self.settings = settings
        self.subjects = settings.subjects
        self.link = link or NatsLink(settings, name="session-registry")
        self.liveness = EdgeLiveness(
            default_interval_s=settings.report_interval_s,
            missed_reports=settings.edge_missed_reports,
        )
        self.store: SessionStore | None = None
        self.consuming = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._report_sub: Any = None
        self._pull: Any = None
        self._blind = False
        self._last_gc = time.monotonic()
        self._fetch_failing_since: float | None = None
        self._reconciling: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        nc = await self.link.connect()
        js = nc.jetstream()
        await ensure_streams(js, self.subjects, self.settings.stream_limits)
        kv = await ensure_kv(
            js, self.subjects.sessions_bucket, replicas=self.settings.nats_stream_replicas
        )
        self.store = SessionStore(kv, instance_id=self.settings.instance_id)
        await self.store.start()
        await self.store.loaded.wait()
        now = time.monotonic()
        for edge_id in self.store.live_by_edge():
            self.liveness.notice(edge_id, now)
        self._report_sub = await nc.subscribe(self.subjects.edge_reports, cb=self._on_report)
        self._pull = await js.pull_subscribe(
            self.subjects.sessions,
            durable=self.settings.consumer_name,
            stream=self.subjects.sessions_stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=30,
                max_ack_pending=10_000,
            ),
        )
        self._tasks = [
            asyncio.create_task(self._consume(), name="registry-consume"),
            asyncio.create_task(self._sweep_forever(), name="registry-sweep"),
        ]
        log.info(
            "session-registry started",
            extra={"sessions": self.store.live_count(), "instance": self.settings.instance_id},
        )

    async def stop(self) -> None:
        """Finish the batch in hand, stop the timers, then drain NATS."""
        self._stopping.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=15)
        for task in list(self._reconciling.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # a pull subscription left open makes the drain wait its full timeout (nats-py)
        for sub in (self._pull, self._report_sub):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        if self.store is not None:
            await self.store.flush_total()
            await self.store.stop()
        await self.link.close()
        log.info("session-registry stopped")

    def ready(self) -> bool:
        return (
            self.store is not None
            and self.store.loaded.is_set()
            and self.consuming.is_set()
            and not self._stopping.is_set()
            and self.link.ready(max_outage_s=self.settings.max_outage_s)
            and not self._consumer_broken()
        )

    def _consumer_broken(self) -> bool:
        # e.g. the stream or consumer is gone (a NATS store wiped): a restart recreates them
        since = self._fetch_failing_since
        return since is not None and time.monotonic() - since > self.settings.max_outage_s

    # -- session events -------------------------------------------------------------------
    async def _consume(self) -> None:
        self.consuming.set()
        while not self._stopping.is_set():
            try:
                msgs = await self._pull.fetch(batch=_FETCH_BATCH, timeout=1.0)
            except TimeoutError:  # nothing new (nats raises asyncio's TimeoutError here)
                self._fetch_failing_since = None
                continue
            except Exception as exc:
                if self._stopping.is_set():
                    return
                if self._fetch_failing_since is None:
                    self._fetch_failing_since = time.monotonic()
                log.warning("fetching session events failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
                continue
            self._fetch_failing_since = None
            await self._handle_batch(msgs)

    async def _handle_batch(self, msgs: list[Any]) -> None:
        # events of one session are applied in order; different sessions at once
        chains: dict[str, list[Any]] = defaultdict(list)
        for msg in msgs:
            chains[_chain_key(msg)].append(msg)
        await asyncio.gather(*(self._handle_chain(chain) for chain in chains.values()))
        assert self.store is not None
        LIVE_SESSIONS.set(self.store.live_count())

    async def _handle_chain(self, chain: list[Any]) -> None:
        for msg in chain:
            await self._handle(msg)

    async def _handle(self, msg: Any) -> None:
        kind = msg.subject.rsplit(".", 1)[-1]
        seq = int(msg.metadata.sequence.stream)
        try:
            if kind == "opened":
                opened = SessionOpened.model_validate_json(msg.data)
                self.liveness.notice(opened.edge_id, time.monotonic())
                change = await self._mutate(
                    opened.session_id, lambda cur: on_opened(cur, opened, seq)
                )
                self._count(change, "event")
            elif kind == "closed":
                closed = SessionClosed.model_validate_json(msg.data)
                change = await self._mutate(
                    closed.session_id, lambda cur: on_closed(cur, closed, seq)
                )
                self._count(change, "event")
            elif kind == "activity":
                change = await self._apply_activity(SessionActivity.model_validate_json(msg.data))
            else:
                EVENTS.labels("unknown", "invalid").inc()
                await msg.ack()
                return
        except (ValidationError, ValueError) as exc:
            # a malformed event will never parse: acknowledge it so it cannot block the stream
            EVENTS.labels(kind, "invalid").inc()
            log.warning("invalid session event dropped", extra={"kind": kind, "error": str(exc)})
            await msg.ack()
            return
        except Exception:
            EVENTS.labels(kind, "retry").inc()
            log.warning("applying a session event failed; redelivering", exc_info=True)
            with contextlib.suppress(Exception):
                await msg.nak(delay=1)
            return
        EVENTS.labels(kind, "applied" if change is not None else "noop").inc()
        await msg.ack()

    async def _apply_activity(self, batch: SessionActivity) -> Change | None:
        assert self.store is not None
        limit = asyncio.Semaphore(_ACTIVITY_CONCURRENCY)
        changed: list[Change] = []

        async def one(session_id: str, at: str) -> None:
            if self.store is None or self.store.get(session_id) is None:
                return  # unknown or closed here: nothing to move forward
            async with limit:
                change = await self._mutate(
                    session_id, lambda cur: on_activity(cur, batch.edge_id, at)
                )
            if change is not None:
                changed.append(change)

        await asyncio.gather(*(one(sid, at) for sid, at in batch.last_activity.items()))
        return changed[0] if changed else None

    async def _mutate(self, session_id: str, decide: Any) -> Change | None:
        assert self.store is not None
        if session_key(session_id) is None:
            raise ValueError(f"session id {session_id[:80]!r} is not a valid id")
        return await self.store.mutate(session_id, decide)

    @staticmethod
    def _count(change: Change | None, reason: str) -> None:
        if change is None:
            return
        if change.new_session:
            SESSIONS_OPENED.inc()
        if change.closed:
            SESSIONS_CLOSED.labels(reason).inc()

    # -- edges ----------------------------------------------------------------------------
    async def _on_report(self, msg: Any) -> None:
        try:
            report = EdgeReport.model_validate_json(msg.data)
        except ValidationError:
            log.warning("invalid edge report dropped", extra={"subject": msg.subject})
            return
        if self.store is None:
            return
        reason = self.liveness.on_report(report, time.monotonic())
        edge_id = report.edge_id
        if reason is None or edge_id in self._reconciling:
            return
        # its own task: paging a big edge must not hold up the other edges' reports
        task = asyncio.create_task(self._reconcile(edge_id, reason), name=f"reconcile-{edge_id}")
        self._reconciling[edge_id] = task
        task.add_done_callback(lambda _: self._reconciling.pop(edge_id, None))

    async def _reconcile(self, edge_id: str, reason: ReconcileReason) -> None:
        """Ask the edge for its session list; close what we hold that it does not list."""
        assert self.store is not None
        known = self.store.live_on(edge_id)  # before the first request: see liveness.py
        listed: set[str] = set()
        first: EdgeSessionList | None = None
        after: str | None = None
        while True:
            page = await self._session_page(edge_id, after)
            if page is None or (first is not None and page.boot_id != first.boot_id):
                RECONCILIATIONS.labels(reason, "no_answer").inc()
                return  # asked again at the edge's next report
            first = first or page
            listed.update(page.session_ids)
            if page.next_cursor is None:
                break
            after = page.next_cursor
        stale = unlisted(known, listed)
        if stale:
            log.info(
                "closing sessions the edge no longer lists",
                extra={"edge_id": edge_id, "sessions": len(stale), "reason": reason},
            )
            await self._close_on_edge(edge_id, stale, "not_listed")
        self.liveness.reconciled(edge_id, first.boot_id, first.session_events_unconfirmed)
        RECONCILIATIONS.labels(reason, "done").inc()

    async def _session_page(self, edge_id: str, after: str | None) -> EdgeSessionList | None:
        try:
            reply = await self.link.nc.request(
                self.subjects.edge_sessions(edge_id),
                dumps(EdgeSessionsRequest(after=after)),
                timeout=self.settings.reconcile_timeout_s,
            )
            return EdgeSessionList.model_validate_json(reply.data)
        except (nats.errors.Error, TimeoutError, ValidationError) as exc:
            log.info(
                "the edge did not give its session list; asking again at its next report",
                extra={"edge_id": edge_id, "error": repr(exc)},
            )
            return None

    async def _close_on_edge(self, edge_id: str, session_ids: Any, reason: str) -> int:
        closed = 0
        now = utc_timestamp()
        for session_id in session_ids:
            try:
                change = await self._mutate(
                    session_id, lambda cur: on_edge_lost(cur, edge_id, now, reason)
                )
            except Exception:
                log.warning("closing a session failed", exc_info=True, extra={"edge_id": edge_id})
                continue
            self._count(change, reason)
            closed += 1 if change is not None and change.closed else 0
        return closed

    async def _sweep_forever(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.sweep_interval_s)
            if self._stopping.is_set():
                return
            try:
                await self.sweep()
            except Exception:
                log.warning("sweep failed", exc_info=True)

    async def sweep(self) -> None:
        """Close the sessions of lost edges; delete records closed long ago."""
        assert self.store is not None
        now = time.monotonic()
        if not self.link.is_connected:
            self._blind = True  # reports cannot arrive: silence proves nothing
            return
        if self._blind:
            self._blind = False
            for edge_id in self.liveness.known():
                self.liveness.forget(edge_id)
        by_edge = self.store.live_by_edge()
        for edge_id in by_edge:
            self.liveness.notice(edge_id, now)
        for edge_id in self.liveness.lost(now):
            sessions = by_edge.get(edge_id, set())
            if sessions:
                closed = await self._close_on_edge(edge_id, sorted(sessions), "edge_lost")
                log.warning(
                    "edge stopped reporting; its sessions are closed",
                    extra={"edge_id": edge_id, "sessions": closed},
                )
            self.liveness.forget(edge_id)
        LIVE_SESSIONS.set(self.store.live_count())
        await self.store.flush_total()
        if now - self._last_gc >= _GC_EVERY_S:
            self._last_gc = now
            cutoff = utc_now() - timedelta(seconds=self.settings.tombstone_ttl_s)
            removed = await self.store.forget_closed(cutoff.replace(tzinfo=None))
            if removed:
                log.info("old session records removed", extra={"records": removed})

    # -- stats and broadcast --------------------------------------------------------------
    async def ask_stats(self) -> ConnectionStats:
        try:
            reply = await self.link.nc.request(
                self.subjects.stats_get,
                dumps(StatsRequest()),
                timeout=self.settings.stats_timeout_s,
            )
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            raise StatsUnavailable("the stats service did not answer") from exc
        except nats.errors.Error as exc:
            raise StatsUnavailable(f"NATS: {exc}") from exc
        try:
            return StatsMessage.model_validate_json(reply.data).data
        except ValidationError as exc:
            raise StatsUnavailable("the stats service answered something unreadable") from exc

    async def broadcast(self, message: BroadcastMessage) -> str:
        if not self.link.is_connected:
            raise ConnectionError("NATS is not connected")
        subject = self.subjects.broadcast(message.group)
        await self.link.nc.publish(subject, dumps(message.message))
        await self.link.nc.flush(timeout=2)
        return subject


def _chain_key(msg: Any) -> str:
    # opened/closed of one session must be applied in order within a batch; the session id
    # is cheap to find without a full parse, and activity batches are their own chain
    if msg.subject.endswith(".activity"):
        return f"activity:{id(msg)}"
    try:
        return f"session:{loads(msg.data).get('session_id')}"
    except Exception:
        return f"invalid:{id(msg)}"
