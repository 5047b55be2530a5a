"""The stats service's I/O: edge reports and provider health in; ``stats_update``,
``provider_stats`` and ``stats.get`` replies out; the aggregate persisted in JetStream KV.

Run one replica: each replica would publish its own ``stats_update``. A second replica during
a rolling update only duplicates a tick; both answer ``stats.get`` (one queue group) with the
same numbers, since both hear every report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, get_args

from nats.js.errors import KeyNotFoundError
from pydantic import ValidationError

from pricewire_common.encoding import dumps
from pricewire_common.natsconn import NatsLink
from pricewire_common.streams import ensure_kv, ensure_streams
from pricewire_contracts import (
    ConnectionStats,
    EdgeReport,
    ProviderHealth,
    ProviderState,
    StatsMessage,
    StatsRequest,
    StatsUpdate,
)

from .aggregate import AggregateState, Aggregator
from .metrics import (
    ACTIVE_CONNECTIONS,
    LIVE_EDGES,
    PERSIST_FAILURES,
    PROVIDERS,
    PUBLISHED,
    RECEIVED,
    STATS_REQUESTS,
)
from .providers import ProviderBoard
from .settings import StatsSettings

__all__ = ["STATE_KEY", "StatsService"]

log = logging.getLogger("pricewire.stats")

STATE_KEY = "aggregate"
_QUEUE = "pricewire-stats"


class StatsService:
    def __init__(self, settings: StatsSettings, link: NatsLink | None = None) -> None:
        self.settings = settings
        self.subjects = settings.subjects
        self.link = link or NatsLink(settings, name="stats")
        self.aggregator = Aggregator(
            missed_reports=settings.edge_missed_reports, retention_s=settings.boot_retention_s
        )
        self.providers = ProviderBoard(
            stale_after_s=settings.provider_stale_after_s,
            forget_after_s=settings.provider_forget_after_s,
        )
        self._kv: Any = None
        self._revision = 0
        self._dirty = False
        self._subs: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.started = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        nc = await self.link.connect()
        js = nc.jetstream()
        await ensure_streams(js, self.subjects, self.settings.stream_limits)
        self._kv = await ensure_kv(
            js, self.subjects.stats_bucket, replicas=self.settings.nats_stream_replicas
        )
        await self._load()
        self._subs = [
            await nc.subscribe(self.subjects.edge_reports, cb=self._on_report),
            await nc.subscribe(self.subjects.provider_health_all, cb=self._on_health),
            await nc.subscribe(self.subjects.stats_get, queue=_QUEUE, cb=self._on_request),
        ]
        await nc.flush()
        self._tasks = [
            asyncio.create_task(
                self._every(self.settings.stats_interval_s, self.publish_stats), name="stats-update"
            ),
            asyncio.create_task(
                self._every(self.settings.provider_stats_interval_s, self.publish_providers),
                name="provider-stats",
            ),
            asyncio.create_task(
                self._every(self.settings.persist_interval_s, self.persist), name="stats-persist"
            ),
        ]
        self.started.set()
        totals = self.aggregator.totals()
        log.info(
            "stats started",
            extra={
                "total_sessions": totals.total_sessions,
                "messages_sent": totals.messages_sent,
                "boots": len(self.aggregator.state.boots),
            },
        )

    async def stop(self) -> None:
        """Stop the timers, answer what is in flight, save the totals, drain NATS."""
        self._stopping.set()
        for task in self._tasks:  # each finishes the job in hand, then sees the stop
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.drain()
        if self._kv is not None:
            self._dirty = True
            await self.persist()
        await self.link.close()
        log.info("stats stopped")

    def ready(self) -> bool:
        return (
            self.started.is_set()
            and not self._stopping.is_set()
            and self.link.ready(max_outage_s=self.settings.max_outage_s)
        )

    async def _every(self, interval_s: float, job: Any) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)
            if self._stopping.is_set():
                return
            try:
                await job()
            except Exception:
                log.warning("periodic job failed", exc_info=True, extra={"job": job.__name__})

    # -- state ----------------------------------------------------------------------------
    async def _load(self) -> None:
        try:
            entry = await self._kv.get(STATE_KEY)
        except KeyNotFoundError as exc:
            self._revision = exc.entry.revision if exc.entry is not None else 0
            return
        self._revision = entry.revision
        try:
            self.aggregator.state = AggregateState.model_validate_json(entry.value)
        except ValidationError:
            # keep the unreadable value: the next write replaces it, an operator can read history
            log.error("persisted stats state unreadable; starting from zero", exc_info=True)

    async def persist(self) -> None:
        if self.aggregator.expire(time.time()):
            self._dirty = True
        if not self._dirty:
            return
        self._dirty = False
        try:
            self._revision = await self._kv.put(STATE_KEY, dumps(self.aggregator.state))
        except Exception:
            self._dirty = True
            PERSIST_FAILURES.inc()
            log.warning("saving the stats totals failed; will retry", exc_info=True)

    # -- inputs ---------------------------------------------------------------------------
    async def _on_report(self, msg: Any) -> None:
        try:
            report = EdgeReport.model_validate_json(msg.data)
        except ValidationError:
            RECEIVED.labels("edge_report", "invalid").inc()
            log.warning("invalid edge report dropped", extra={"subject": msg.subject})
            return
        self.aggregator.apply(report, time.time())
        self._dirty = True
        RECEIVED.labels("edge_report", "applied").inc()

    async def _on_health(self, msg: Any) -> None:
        try:
            health = ProviderHealth.model_validate_json(msg.data)
        except ValidationError:
            RECEIVED.labels("provider_health", "invalid").inc()
            return
        self.providers.observe(health, time.time())
        RECEIVED.labels("provider_health", "applied").inc()

    async def _on_request(self, msg: Any) -> None:
        report = None
        try:
            request = StatsRequest.model_validate_json(msg.data) if msg.data else StatsRequest()
            report = request.report
        except ValidationError:
            pass  # still answer: an unreadable request gets the current numbers
        if report is not None:
            # the asking edge's counters as of now: the reply already counts its new client
            self.aggregator.apply(report, time.time())
            self._dirty = True
        STATS_REQUESTS.labels(str(report is not None).lower()).inc()
        if msg.reply:
            await msg.respond(dumps(StatsMessage(data=self.current())))

    # -- outputs --------------------------------------------------------------------------
    def current(self) -> ConnectionStats:
        now = time.time()
        stats = self.aggregator.snapshot(now)
        LIVE_EDGES.set(len(self.aggregator.live(now)))
        ACTIVE_CONNECTIONS.set(stats.active_connections)
        return stats

    async def publish_stats(self) -> None:
        # saved first: numbers clients have seen must survive a crash right after
        await self.persist()
        await self.link.nc.publish(
            self.subjects.stats_update, dumps(StatsUpdate(data=self.current()))
        )
        PUBLISHED.labels("stats_update").inc()

    async def publish_providers(self) -> None:
        message = self.providers.message(time.time())
        if message is None:
            return
        summary = message.data.summary
        for status in get_args(ProviderState):
            PROVIDERS.labels(status).set(getattr(summary, status))
        await self.link.nc.publish(self.subjects.provider_stats, dumps(message))
        PUBLISHED.labels("provider_stats").inc()
