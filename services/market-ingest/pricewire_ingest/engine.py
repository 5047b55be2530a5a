"""The ingest engine: asyncio loops around the pure core.

It polls this shard's providers (scheduler, token buckets, breakers, a global concurrency
limit), feeds the answers to the quote book, the news deduplicator and the alert rules, and
publishes through a :class:`Publisher` (NATS in the service, a list in tests and benchmarks).
It makes HTTP requests only through a :class:`Fetcher`; it never imports nats or httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from prometheus_client import Counter, Gauge

from pricewire_common.encoding import dumps
from pricewire_common.ratelimit import TokenBucket
from pricewire_contracts import (
    AlertData,
    AlertMessage,
    ChainHeadReading,
    ChainStatus,
    MarketCoin,
    MarketUpdate,
    NewsItem,
    NewsMessage,
    PriceData,
    PriceUpdate,
    ProviderHealth,
    ProviderQuotes,
    QuoteReading,
    Severity,
    SubjectCatalog,
    SubjectError,
    utc_timestamp,
)

from . import metrics
from .adapters import (
    Adapter,
    ParseContext,
    RawResponse,
    RequestSpec,
    adapter_for,
    build_request,
    evaluate,
    feeds_of,
)
from .catalog import Asset, Catalog, Provider, disabled_reason
from .core.alerts import Alert, AlertEngine, AlertRules
from .core.breaker import CircuitBreaker
from .core.chains import ChainBoard, ChainView
from .core.consensus import ConsensusPrice, QuoteBook, consensus, median_of
from .core.gate import PriceGate
from .core.health import HealthWindow, status_for
from .core.news import NewsDeduplicator
from .core.schedule import PollTiming, Scheduler, next_poll_at
from .errors import PollFailure, PollOutcome, RateLimited
from .quotes import NewsEntry, PollData, PriceQuote
from .settings import IngestSettings

__all__ = ["Fetcher", "IngestEngine", "MemoryPublisher", "PollReport", "PublishKind", "Publisher"]

log = logging.getLogger("pricewire.ingest")

#: what a published message is, as counted in ``pricewire_ingest_published_total{kind}``
PublishKind = Literal["alert", "chain", "health", "market", "news", "price", "quotes", "tick"]

#: categories whose market cap and volume are global figures (an exchange's are its own)
_AGGREGATE_CATEGORIES = frozenset({"market_data", "defi"})


class Fetcher(Protocol):
    async def fetch(self, spec: RequestSpec, *, timeout_s: float) -> RawResponse: ...


class Publisher(Protocol):
    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None: ...


@dataclass
class MemoryPublisher:
    """Keeps what would be published (tests, benchmarks)."""

    messages: list[tuple[str, bytes, dict[str, str] | None]] = field(default_factory=list)

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.messages.append((subject, payload, headers))


@dataclass(frozen=True, slots=True)
class PollReport:
    provider_id: str
    outcome: PollOutcome
    latency_s: float
    data: PollData | None = None
    detail: str | None = None


@dataclass
class _ProviderState:
    provider: Provider
    adapter: Adapter
    bucket: TokenBucket
    breaker: CircuitBreaker
    health: HealthWindow
    interval_s: float
    disabled: str | None = None
    failures: int = 0
    rate_limited_streak: int = 0
    polls: int = 0
    last_outcome: PollOutcome | None = None
    last_report: ProviderHealth | None = None
    last_report_at: float = float("-inf")


class IngestEngine:
    """
    >>> engine = IngestEngine(settings, catalog, fetcher=HttpFetcher(), publisher=publisher,
    ...                       keys=os.environ)                           # doctest: +SKIP
    >>> await engine.run(stop_event)                                     # doctest: +SKIP
    """

    def __init__(
        self,
        settings: IngestSettings,
        catalog: Catalog,
        *,
        fetcher: Fetcher,
        publisher: Publisher,
        keys: Mapping[str, str],
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.fetcher = fetcher
        self.publisher = publisher
        self.keys = keys
        self.rng = rng or random.Random()
        self.wall = wall_clock
        self.clock = clock
        self.subjects: SubjectCatalog = settings.subjects
        self.assets: list[Asset] = list(catalog.assets)
        self.timing = PollTiming(
            jitter_ratio=settings.poll_jitter_ratio,
            retry_base_s=settings.retry_base_s,
            min_interval_s=0.5,
        )
        self.scheduler = Scheduler()
        self.book = QuoteBook()
        self.gate = PriceGate(
            min_interval_s=settings.price_min_interval_s, refresh_s=settings.price_refresh_s
        )
        self.news = NewsDeduplicator()
        self.alerts = AlertEngine(
            AlertRules(
                levels=settings.alert_price_levels,
                steps=settings.alert_level_steps,
                hysteresis_pct=settings.alert_hysteresis_pct,
                move_pct=settings.alert_move_pct,
                move_critical_pct=settings.alert_move_critical_pct,
                move_window_s=settings.alert_move_window_s,
                cooldown_s=settings.alert_cooldown_s,
                dislocation_pct=settings.alert_dislocation_pct,
                dislocation_clear_pct=settings.alert_dislocation_clear_pct,
                locale=settings.alert_locale,
            ),
            names={a.symbol: (a.name, a.name_fa) for a in self.assets},
        )
        self.prices: dict[str, ConsensusPrice] = {}
        self.sentiment: tuple[int, str] | None = None
        self.chains = ChainBoard()
        self.states: dict[str, _ProviderState] = {}
        self._aggregators: set[str] = set()
        #: the upstreams of ``_aggregators`` (kept beside it: the consensus asks on every tick)
        self._aggregate_upstreams: set[str] = set()
        #: per symbol, the consensus gauges' children (``labels()`` is not free on every tick)
        self._gauges: dict[str, tuple[Gauge, Gauge, Gauge]] = {}
        self._mirrors = catalog.mirrors
        self._semaphore = asyncio.Semaphore(settings.poll_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = asyncio.Event()
        self._stopping = False
        self._succeeded = 0
        self._network_failures = 0
        self._warned_offline = False
        self._health_sources: list[Callable[[], list[ProviderHealth]]] = []
        self._build_states()

    # -- setup ---------------------------------------------------------------------------
    def _build_states(self) -> None:
        now = self.clock()
        s = self.settings
        scale = s.poll_interval_scale
        providers = self.catalog.shard(s.shard_index, s.shard_count)
        buckets: dict[str, TokenBucket] = {}
        group_rate: dict[str, float] = {}
        for p in providers:
            rate = p.rate_limit.rate_per_s
            group_rate[p.group] = min(group_rate.get(p.group, rate), rate)
        for p in providers:
            if p.group not in buckets:
                # the documented limit; a sped-up simulator clock raises it by the same factor
                buckets[p.group] = TokenBucket(
                    rate=group_rate[p.group] / scale,
                    burst=max(1.0, min(float(p.rate_limit.requests), 5.0)),
                    now=now,
                )
            state = _ProviderState(
                provider=p,
                adapter=adapter_for(p.family),
                bucket=buckets[p.group],
                breaker=CircuitBreaker(
                    failure_threshold=s.breaker_failure_threshold,
                    open_base_s=s.breaker_open_base_s,
                    open_max_s=s.breaker_open_max_s,
                    rng=self.rng,
                ),
                health=HealthWindow(window_s=s.health_window_s),
                interval_s=max(0.5, p.poll_interval_s * scale),
                disabled=disabled_reason(p, self.keys),
            )
            self.states[p.id] = state
            if p.category in _AGGREGATE_CATEGORIES:
                self._add_aggregator(p.id)
            if state.disabled is None:
                first = self.rng.uniform(0.0, min(state.interval_s, s.initial_spread_s))
                self.scheduler.schedule(p.id, now + first)

    @property
    def polled(self) -> list[_ProviderState]:
        return [st for st in self.states.values() if st.disabled is None]

    @property
    def started(self) -> bool:
        return self._started.is_set()

    # -- the loops -----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Poll and publish until ``stop`` is set, then let polls in flight finish (bounded)."""
        log.info(
            "ingest starting",
            extra={
                "shard": f"{self.settings.shard_index}/{self.settings.shard_count}",
                "providers": len(self.states),
                "polled": len(self.polled),
                "disabled": len(self.states) - len(self.polled),
                "simulated": self.settings.simulated,
            },
        )
        await self._report_disabled(force=True)
        self._started.set()
        loops = [
            self._poll_loop(stop),
            self._every(min(5.0, self.settings.health_refresh_s), self.refresh_health, stop),
            self._every(2.0, self.publish_provider_alerts, stop),
        ]
        if self.settings.publishes_prices:
            loops += [
                self._every(self.settings.price_tick_s, self.publish_prices, stop),
                self._every(self.settings.market_interval_s, self.publish_market, stop),
            ]
        if not self.settings.simulated:
            loops.append(self._watch_network(stop))
        try:
            async with asyncio.TaskGroup() as group:
                for loop in loops:
                    group.create_task(loop)
        finally:
            self._stopping = True
            if self._tasks:
                _, pending = await asyncio.wait(self._tasks, timeout=5.0)
                for task in pending:
                    task.cancel()

    async def _every(
        self, period_s: float, action: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                await action()
            except Exception:
                log.exception("ingest loop step failed", extra={"step": action.__name__})
            await _sleep_unless(stop, period_s)

    async def _poll_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            now = self.clock()
            for pid in self.scheduler.pop_due(now):
                self._start_poll(self.states[pid], now)
            due = self.scheduler.next_due()
            wait = 0.5 if due is None else min(max(due - self.clock(), 0.005), 0.5)
            await _sleep_unless(stop, wait)

    def _start_poll(self, state: _ProviderState, now: float) -> None:
        pid = state.provider.id
        if not state.breaker.allow(now):
            metrics.POLLS_DEFERRED.labels("breaker").inc()
            self.scheduler.schedule(pid, max(state.breaker.open_until, now + 0.5))
            return
        if not state.bucket.take(now):
            wait = state.bucket.wait_s(now)
            # the provider's documented limit is spent: try again when a token is back
            metrics.POLLS_DEFERRED.labels("rate_limit").inc()
            self.scheduler.schedule(pid, now + wait + self.rng.uniform(0, 0.1))
            return
        task = asyncio.create_task(self._guarded_poll(state), name=f"poll-{pid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded_poll(self, state: _ProviderState) -> None:
        async with self._semaphore:
            try:
                await self.poll(state.provider.id)
            except Exception:
                log.exception("poll crashed", extra={"provider": state.provider.id})
                if self.scheduler.due_at(state.provider.id) is None:
                    self.scheduler.schedule(state.provider.id, self.clock() + state.interval_s)

    # -- one poll ------------------------------------------------------------------------
    async def poll(self, provider_id: str) -> PollReport:
        """Poll one provider now, record the result, publish its health and data."""
        state = self.states[provider_id]
        p = state.provider
        key = self.keys.get(p.auth.env) if p.auth.env else None
        spec = build_request(
            p,
            state.adapter,
            self.assets,
            key=key,
            base_url_override=self.settings.provider_base_url_override,
            user_agent=self.settings.user_agent,
        )
        timeout_s = self.settings.request_timeout_s or p.timeout_s
        started = self.clock()
        data: PollData | None = None
        failure: PollFailure | None = None
        try:
            raw = await self.fetcher.fetch(spec, timeout_s=timeout_s)
            ctx = ParseContext.for_provider(p, self.assets, self.wall())
            data = evaluate(state.adapter, raw, ctx)
        except PollFailure as exc:
            failure = exc
        latency = self.clock() - started
        outcome: PollOutcome = failure.outcome if failure else "ok"
        report = PollReport(p.id, outcome, latency, data, failure.detail if failure else None)
        chain = self._observe_chain(state, data) if data is not None else None
        await self._record(state, report, failure, chain)
        if data is not None:
            await self._consume(state, data)
        if chain is not None:
            await self._publish_chain(chain)
        return report

    def _observe_chain(self, state: _ProviderState, data: PollData) -> ChainView | None:
        """The chain view after this poll's head (the catalog's ``chain`` names the chain)."""
        head = data.chain_head
        if head is None:
            return None
        name = state.provider.chain or head.chain
        try:
            self.subjects.chain(name)
        except SubjectError:
            log.warning(
                "chain head without a valid chain name",
                extra={"provider": state.provider.id, "chain": name},
            )
            return None
        return self.chains.observe(name, state.provider.id, head, now=self.wall())

    async def _record(
        self,
        state: _ProviderState,
        report: PollReport,
        failure: PollFailure | None,
        chain: ChainView | None = None,
    ) -> None:
        now = self.clock()
        p = state.provider
        breaker = state.breaker
        was_open = breaker.state != "closed"
        retry_after = failure.retry_after_s if isinstance(failure, RateLimited) else None
        state.polls += 1
        state.last_outcome = report.outcome
        if report.outcome == "ok":
            breaker.record_success()
            state.failures = state.rate_limited_streak = 0
            self._succeeded += 1
        elif report.outcome == "rate_limited":
            breaker.record_rate_limited()
            state.failures = 0
            state.rate_limited_streak += 1
        else:
            breaker.record_failure(now)
            state.failures += 1
            if report.outcome in ("network_error", "timeout"):
                self._network_failures += 1
        state.health.record(now, report.outcome == "ok")
        if not was_open and breaker.state == "open":
            log.warning(
                "provider breaker opened",
                extra={"provider": p.id, "outcome": report.outcome, "detail": report.detail},
            )
            self.alerts.on_breaker(p.id, p.name, opened=True, now=now)
        elif was_open and breaker.state == "closed":
            log.info("provider recovered", extra={"provider": p.id})
            self.alerts.on_breaker(p.id, p.name, opened=False, now=now)
        metrics.PROVIDER_REQUESTS.labels(p.id, report.outcome).inc()
        metrics.PROVIDER_LATENCY.labels(p.category).observe(report.latency_s)
        if not self._stopping:
            self.scheduler.schedule(
                p.id,
                next_poll_at(
                    now,
                    state.interval_s,
                    report.outcome,
                    timing=self.timing,
                    rng=self.rng,
                    failures=state.failures,
                    rate_limited_streak=state.rate_limited_streak,
                    retry_after_s=retry_after,
                    breaker_open_until=breaker.open_until if breaker.state == "open" else None,
                ),
            )
        health = ProviderHealth(
            provider_id=p.id,
            name=p.name,
            category=p.category,
            outcome=report.outcome,
            status=status_for(report.outcome),
            latency_ms=round(report.latency_s * 1000, 1),
            breaker=breaker.state,
            success_rate=state.health.success_rate(now),
            window_polls=state.health.polls(now),
            checked_at=utc_timestamp(),
            detail=report.detail,
            retry_after_s=retry_after,
            shard=self.settings.shard_index,
            upstream=p.upstream,
            mirror=p.id in self._mirrors,
            feeds=feeds_of(state.adapter),
            chain=_head_reading(chain, report.data) if chain is not None else None,
        )
        await self._publish_health(state, health)
        if self.settings.forwards_quotes and report.data is not None and report.data.quotes:
            quotes = ProviderQuotes(
                provider_id=p.id,
                category=p.category,
                shard=self.settings.shard_index,
                quotes=[_reading(q) for q in report.data.quotes],
            )
            await self.publish("quotes", self.subjects.provider_quotes(p.id), dumps(quotes))

    def add_remote_quotes(self, event: ProviderQuotes) -> int:
        """Quotes another shard polled; returns how many were kept (the consensus shard only)."""
        if event.shard == self.settings.shard_index:
            return 0
        if event.category in _AGGREGATE_CATEGORIES:
            self._add_aggregator(event.provider_id)
        symbols = {a.symbol for a in self.assets}
        upstream = self.catalog.upstream_of(event.provider_id)
        kept = [
            PriceQuote(
                symbol=q.symbol,
                price=q.price,
                provider_id=event.provider_id,
                observed_at=q.observed_at,
                change_24h=q.change_24h,
                market_cap=q.market_cap,
                volume_24h=q.volume_24h,
                upstream=upstream,
            )
            for q in event.quotes
            if q.symbol in symbols
        ]
        self.book.add(kept)
        return len(kept)

    async def _publish_health(self, state: _ProviderState, health: ProviderHealth) -> None:
        state.last_report = health
        state.last_report_at = self.clock()
        subject = self.subjects.provider_health(health.provider_id)
        await self.publish("health", subject, dumps(health))

    async def _consume(self, state: _ProviderState, data: PollData) -> None:
        if data.quotes:
            upstream = state.provider.upstream
            self.book.add(
                q if q.upstream else dataclasses.replace(q, upstream=upstream) for q in data.quotes
            )
        if data.news:
            await self._publish_news(data.news)
        if data.sentiment is not None:
            reading = data.sentiment
            self.sentiment = (reading.value, reading.classification)
            await self._publish_alerts(
                self.alerts.on_sentiment(reading.value, reading.classification)
            )

    # -- publishing ------------------------------------------------------------------------
    async def publish(
        self,
        kind: PublishKind,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Publish one encoded message on ``subject``, counted under ``kind``. A failure is
        counted and logged, never raised: NATS buffers through short outages, and past that a
        message is dropped rather than the loop that sent it (the streamed ticks use it too)."""
        try:
            await self.publisher.publish(subject, payload, headers)
        except Exception as exc:
            metrics.PUBLISH_ERRORS.labels(kind).inc()
            log.warning(
                "publish failed", extra={"kind": kind, "subject": subject, "error": repr(exc)}
            )
        else:
            _published(kind).inc()

    async def _publish_news(self, entries: tuple[NewsEntry, ...]) -> None:
        now = self.wall()
        max_age = self.settings.news_max_age_s
        recent = [e for e in entries if e.published_at is None or now - e.published_at <= max_age]
        recent.sort(key=lambda e: e.published_at or now, reverse=True)
        # oldest first, so a client reads them in the order they happened
        for entry in reversed(recent[: self.settings.news_per_poll_max]):
            if not self.news.first_time(entry.id):
                metrics.NEWS_DUPLICATES.inc()
                continue
            published = (
                utc_timestamp(datetime.fromtimestamp(entry.published_at, UTC))
                if entry.published_at is not None
                else None
            )
            message = NewsMessage(
                data=NewsItem(
                    id=entry.id,
                    title=entry.title,
                    url=entry.url,
                    source=entry.source,
                    published_at=published,
                    summary=entry.summary,
                )
            )
            # the stream drops a duplicate id within its window (another shard, a restart)
            await self.publish(
                "news", self.subjects.news, dumps(message), {"Nats-Msg-Id": entry.id}
            )

    async def _publish_chain(self, view: ChainView) -> None:
        """One ``ChainStatus`` per chain per poll: the chain's merged head (see core.chains)."""
        message = ChainStatus(
            chain=view.chain,
            height=view.height,
            provider_id=view.provider_id,
            status="stalled" if view.stalled else "ok",
            block_time=_iso(view.block_time),
            block_age_s=round(view.block_age_s, 1),
            base_fee_gwei=_round(view.base_fee_gwei, 4),
            providers=view.providers,
            spread_blocks=view.spread_blocks,
        )
        await self.publish("chain", self.subjects.chain(view.chain), dumps(message))

    async def _publish_alerts(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            message = AlertMessage(
                data=AlertData(
                    alert_type=alert.alert_type,
                    message=alert.message,
                    severity=Severity(alert.severity),
                    symbol=alert.symbol,
                    provider_id=alert.provider_id,
                    value=alert.value,
                )
            )
            log.info(
                "alert",
                extra={
                    "alert_type": alert.alert_type,
                    "severity": alert.severity,
                    "symbol": alert.symbol,
                },
            )
            await self.publish("alert", self.subjects.alert(alert.alert_type), dumps(message))

    def _add_aggregator(self, provider_id: str) -> None:
        self._aggregators.add(provider_id)
        self._aggregate_upstreams.add(self.catalog.upstream_of(provider_id))

    def consensus_for(self, symbol: str, now: float) -> ConsensusPrice | None:
        s = self.settings
        return consensus(
            symbol,
            self.book.quotes(symbol),
            now=now,
            window_s=s.consensus_window_s,
            min_sources=s.consensus_min_sources,
            max_deviation_pct=s.consensus_max_deviation_pct,
            aggregate_upstreams=self._aggregate_upstreams,
        )

    async def publish_prices(self) -> None:
        now = self.wall()
        tick = self.clock()
        for asset in self.assets:
            await self.publish_price(asset.symbol, now=now, tick=tick)
        self.book.prune(now=now, max_age_s=self.settings.consensus_window_s * 2)

    async def publish_price(
        self, symbol: str, *, now: float | None = None, tick: float | None = None
    ) -> None:
        """Recompute ``symbol``'s consensus and publish it if the gate lets it through: every
        price tick for every symbol, and on every streamed tick for its symbol."""
        now = self.wall() if now is None else now
        tick = self.clock() if tick is None else tick
        current = self.consensus_for(symbol, now)
        last = self.prices.get(symbol)
        if current is None:
            if last is None:
                return
            # no trustworthy price any more: keep the last one, flagged, with no source
            current = ConsensusPrice(
                symbol,
                last.price,
                0,
                last.spread_pct,
                True,
                last.change_24h,
                last.updated_at,
                confidence=last.confidence,
                confidence_pct=last.confidence_pct,
            )
        else:
            await self._publish_alerts(self.alerts.on_confidence(symbol, current.confidence_pct))
        self.prices[symbol] = current
        gauges = self._gauges.get(symbol)
        if gauges is None:
            gauges = self._gauges[symbol] = (
                metrics.CONSENSUS_SOURCES.labels(symbol),
                metrics.CONSENSUS_SPREAD.labels(symbol),
                metrics.CONSENSUS_CONFIDENCE.labels(symbol),
            )
        gauges[0].set(current.sources)
        gauges[1].set(current.spread_pct / 100.0)
        gauges[2].set(current.confidence_pct / 100.0)
        alerts = self.alerts.on_stale(symbol, current.stale, tick)
        if not current.stale:
            alerts += self.alerts.on_price(symbol, current.price, tick)
        await self._publish_alerts(alerts)
        if self.gate.admit(current, now=tick):
            message = PriceUpdate(
                data=PriceData(
                    symbol=symbol,
                    price=current.price,
                    change_24h=_round(current.change_24h, 2),
                    sources=current.sources,
                    spread_pct=round(current.spread_pct, 4),
                    stale=current.stale,
                    updated_at=round(current.updated_at, 3),
                    venues=list(current.venues),
                    confidence=min(float(f"{current.confidence:.6g}"), current.price),
                    confidence_pct=round(current.confidence_pct, 4),
                )
            )
            await self.publish("price", self.subjects.price(symbol), dumps(message))

    async def publish_market(self) -> None:
        now = self.wall()
        window = self.settings.consensus_window_s
        coins: dict[str, MarketCoin] = {}
        for asset in self.assets:
            price = self.prices.get(asset.symbol)
            if price is None or price.stale:
                continue
            aggregate = [
                q
                for q in self.book.fresh(asset.symbol, now=now, window_s=window)
                if q.provider_id in self._aggregators
            ]
            coins[asset.symbol.lower()] = MarketCoin(
                price=price.price,
                change_24h=_round(price.change_24h, 2),
                market_cap=_round(median_of(q.market_cap for q in aggregate), 0),
                volume_24h=_round(median_of(q.volume_24h for q in aggregate), 0),
            )
        if coins:
            await self.publish("market", self.subjects.market, dumps(MarketUpdate(data=coins)))

    async def publish_provider_alerts(self) -> None:
        await self._publish_alerts(self.alerts.flush_providers(polled_total=len(self.polled)))

    # -- health refresh --------------------------------------------------------------------
    def _disabled_report(self, state: _ProviderState) -> ProviderHealth:
        p = state.provider
        return ProviderHealth(
            provider_id=p.id,
            name=p.name,
            category=p.category,
            outcome="disabled",
            status="disabled",
            success_rate=0.0,
            window_polls=0,
            checked_at=utc_timestamp(),
            detail=state.disabled,
            shard=self.settings.shard_index,
            upstream=p.upstream,
            mirror=p.id in self._mirrors,
            feeds=feeds_of(state.adapter),
        )

    async def _report_disabled(self, *, force: bool = False) -> None:
        now = self.clock()
        for state in self.states.values():
            if state.disabled is not None and (
                force or now - state.last_report_at >= self.settings.health_refresh_s
            ):
                await self._publish_health(state, self._disabled_report(state))

    async def refresh_health(self) -> None:
        """Every provider is heard of at least every ``health_refresh_s``: disabled ones, and
        polled ones whose interval is longer (their last report again, breaker state current)."""
        await self._report_disabled()
        now = self.clock()
        for state in self.polled:
            last = state.last_report
            if last is not None and now - state.last_report_at >= self.settings.health_refresh_s:
                again = last.model_copy(update={"breaker": state.breaker.state})
                await self._publish_health(state, again)
        self._update_gauges()

    def _update_gauges(self) -> None:
        breakers = {"closed": 0, "open": 0, "half_open": 0}
        statuses = {"online": 0, "offline": 0, "rate_limited": 0, "disabled": 0}
        for state in self.states.values():
            if state.disabled is not None:
                statuses["disabled"] += 1
                continue
            breakers[state.breaker.state] += 1
            if state.last_report is not None:
                statuses[state.last_report.status] += 1
        for name, count in breakers.items():
            metrics.BREAKER_STATES.labels(name).set(count)
        for name, count in statuses.items():
            metrics.PROVIDERS.labels(name).set(count)
        metrics.PROVIDERS_ONLINE.set(statuses["online"])

    # -- live mode without network -------------------------------------------------------
    async def _watch_network(self, stop: asyncio.Event) -> None:
        await _sleep_unless(stop, self.settings.no_network_grace_s)
        if stop.is_set() or self._warned_offline:
            return
        if self._succeeded == 0 and self._network_failures > 0:
            self._warned_offline = True
            log.error(
                "no provider answered: this machine seems to have no internet access. "
                "Every provider is reported offline. Run `make demo` to use the simulated "
                "providers instead.",
                extra={"network_failures": self._network_failures},
            )

    # -- inspection --------------------------------------------------------------------------
    def add_health_source(self, source: Callable[[], list[ProviderHealth]]) -> None:
        """More rows for :meth:`snapshot` (the venues' streams, ``<venue>_stream``)."""
        self._health_sources.append(source)

    def snapshot(self) -> list[ProviderHealth]:
        """The latest health of every provider of this shard, and of the streams beside it."""
        reports = []
        for state in self.states.values():
            if state.last_report is not None:
                reports.append(state.last_report)
            elif state.disabled is not None:
                reports.append(self._disabled_report(state))
        for source in self._health_sources:
            reports.extend(source())
        return reports


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


@functools.cache
def _published(kind: PublishKind) -> Counter:
    """The published counter's child for ``kind`` (looked up once: ticks publish a lot)."""
    return metrics.PUBLISHED.labels(kind)


def _reading(quote: PriceQuote) -> QuoteReading:
    return QuoteReading(
        symbol=quote.symbol,
        price=quote.price,
        observed_at=round(quote.observed_at, 3),
        change_24h=quote.change_24h,
        market_cap=quote.market_cap,
        volume_24h=quote.volume_24h,
    )


def _head_reading(view: ChainView, data: PollData | None) -> ChainHeadReading | None:
    """The polled provider's own head, for its health event (and its provider_stats row)."""
    head = data.chain_head if data is not None else None
    if head is None:
        return None
    return ChainHeadReading(
        chain=view.chain,
        height=head.height,
        behind=view.behind,
        block_time=_iso(head.block_time),
        block_age_s=round(view.provider_age_s, 1),
        base_fee_gwei=_round(head.base_fee_gwei, 4),
    )


def _iso(unix: float | None) -> str | None:
    return None if unix is None else utc_timestamp(datetime.fromtimestamp(unix, UTC))


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
