"""Streamed ticks into the ingest: the glue between the venues' streams and the engine.

A tick

1. goes out raw on core NATS, ``tick.<venue>.<SYMBOL>`` (``StreamTick``; not kept);
2. becomes the venue's quote for the symbol in the engine's quote book, as the same upstream
   as the venue's REST adapter (the consensus keeps the freshest quote per upstream, so the
   stream and the REST poll are one vote, and REST takes over when the stream goes quiet); the
   24 h volume and change a tick does not carry are those of the upstream's latest quote;
3. recomputes the symbol's consensus: ``price_update`` goes out when the price moved, at most
   once per ``price_min_interval_s`` per symbol (the engine's gate).

Each venue's stream status (live, degraded, offline and why) goes out as the health of a
provider ``<venue>_stream`` every ``stream_health_s`` and whenever it changes, so that
``provider_stats`` shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from pricewire_common.encoding import dumps
from pricewire_contracts import ProviderHealth, StreamHealth, utc_timestamp

from ..catalog import Catalog
from ..quotes import PriceQuote
from ..settings import IngestSettings
from . import PROTOCOLS
from .manager import StreamManager, StreamTuning, VenueStatus, VenueStream
from .protocol import Tick

if TYPE_CHECKING:
    from ..engine import IngestEngine

__all__ = ["StreamIngest", "encode_tick", "stream_provider_id"]

log = logging.getLogger("pricewire.ingest.stream")

_NAMES = {
    "binance": "Binance",
    "coinbase": "Coinbase Exchange",
    "kraken": "Kraken",
    "okx": "OKX",
    "bybit": "Bybit",
    "bitstamp": "Bitstamp",
}


def stream_provider_id(venue: str) -> str:
    """The provider id a venue's stream reports its health under (``binance_stream``)."""
    return f"{venue}_stream"


class StreamIngest:
    def __init__(
        self,
        engine: IngestEngine,
        settings: IngestSettings,
        catalog: Catalog,
        *,
        rng: random.Random | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.catalog = catalog
        self.subjects = settings.subjects
        tuning = StreamTuning(
            backoff_base_s=settings.stream_backoff_base_s,
            backoff_cap_s=settings.stream_backoff_max_s,
            offline_after_s=settings.stream_offline_after_s,
            user_agent=settings.user_agent,
        )
        self.upstreams: dict[str, str] = {}
        streams = []
        for venue, url in settings.stream_url_for.items():
            cls = PROTOCOLS[venue]
            self.upstreams[venue] = catalog.upstream_of(cls.rest_provider)
            stream = VenueStream(
                cls(catalog.assets),
                url or cls.url,
                self.on_tick,
                stall_s=settings.stream_stall_s.get(venue),
                tuning=tuning,
                rng=rng or random.Random(),
            )
            if wall is not None:
                stream.wall = wall
            streams.append(stream)
        self.manager = StreamManager(streams)
        self._reported: dict[str, tuple[str, str | None]] = {}
        self._computed: dict[str, float] = {}  #: engine clock of the last recomputation
        self._ticked: dict[str, float] = {}  #: engine clock of the last tick
        self._scheduled: set[str] = set()
        self._flushing: set[asyncio.Task[None]] = set()
        self._tick_subjects: dict[tuple[str, str], str] = {}
        engine.add_health_source(self.snapshot)

    # -- ticks --------------------------------------------------------------------------
    async def on_tick(self, tick: Tick) -> None:
        engine = self.engine
        if self.settings.stream_publish_ticks:
            key = (tick.venue, tick.symbol)
            subject = self._tick_subjects.get(key)
            if subject is None:
                subject = self._tick_subjects[key] = self.subjects.tick(*key)
            await engine.publish("tick", subject, encode_tick(tick))
        engine.book.add([self.quote(tick)])
        self._ticked[tick.symbol] = engine.clock()
        await self._recompute(tick.symbol)

    async def _recompute(self, symbol: str) -> None:
        """The symbol's consensus again, at most once per ``price_min_interval_s``.

        The first tick after an interval recomputes at once (its price goes out with its own
        time: the freshest). Ticks inside an interval only update the book; if none follows
        to recompute, a fallback one interval after the end of the interval publishes the
        burst's last tick. So the cost does not grow with the tick rate, and at a steady rate
        a price is never held back to the end of an interval. The times are the engine's
        clock, as its price gate's, taken after each publish, so the gate lets it through."""
        clock = self.engine.clock
        interval = self.settings.price_min_interval_s
        due = self._computed.get(symbol, float("-inf")) + interval
        now = clock()
        if now >= due:
            await self.engine.publish_price(symbol)
            self._computed[symbol] = clock()
        elif symbol not in self._scheduled:
            self._scheduled.add(symbol)
            asyncio.get_running_loop().call_later(due + interval - now, self._flush, symbol)

    async def _publish_price(self, symbol: str) -> None:
        self._scheduled.discard(symbol)
        clock = self.engine.clock
        computed = self._computed.get(symbol, float("-inf"))
        if self._ticked.get(symbol, float("-inf")) <= computed:
            return  # a tick recomputed meanwhile, after the last tick
        wait = computed + self.settings.price_min_interval_s - clock()
        if wait > 0:  # too soon after that recomputation: try again later
            self._scheduled.add(symbol)
            later = wait + self.settings.price_min_interval_s
            asyncio.get_running_loop().call_later(later, self._flush, symbol)
            return
        try:
            await self.engine.publish_price(symbol)
        except Exception:
            log.exception("price after ticks failed", extra={"symbol": symbol})
        finally:
            self._computed[symbol] = clock()

    def _flush(self, symbol: str) -> None:
        task = asyncio.create_task(self._publish_price(symbol))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    def quote(self, tick: Tick) -> PriceQuote:
        """The tick as its upstream's quote (volume and change carried over when missing)."""
        upstream = self.upstreams.get(tick.venue, tick.venue)
        volume, change = tick.volume_24h, tick.change_24h
        if volume is None or change is None:
            same = [
                q
                for q in self.engine.book.quotes(tick.symbol)
                if (q.upstream or q.provider_id) == upstream
            ]
            if same:
                latest = max(same, key=lambda q: q.observed_at)
                volume = latest.volume_24h if volume is None else volume
                change = latest.change_24h if change is None else change
        return PriceQuote(
            symbol=tick.symbol,
            price=tick.price,
            provider_id=stream_provider_id(tick.venue),
            observed_at=tick.observed_at,
            change_24h=change,
            volume_24h=volume,
            upstream=upstream,
        )

    # -- health -------------------------------------------------------------------------
    def health(self, status: VenueStatus) -> ProviderHealth:
        live = status.state == "live"
        detail = (
            f"stream {status.state}"
            + (f": {status.reason}" if status.reason else "")
            + f" ({status.ticks} ticks, {status.reconnects} reconnects, {status.stalls} stalls,"
            f" {status.sequence_gaps} sequence gaps, {status.malformed} malformed)"
        )
        return ProviderHealth(
            provider_id=stream_provider_id(status.venue),
            name=f"{_NAMES.get(status.venue, status.venue)} WebSocket",
            category="exchange",
            outcome="ok" if status.state != "offline" else "network_error",
            status="online" if status.state != "offline" else "offline",
            success_rate=100.0 if live else 0.0,
            window_polls=status.ticks,
            checked_at=utc_timestamp(),
            detail=detail,
            shard=self.settings.shard_index,
            upstream=self.upstreams.get(status.venue),
            feeds=["prices"],
            stream=_stream_health(status),
        )

    def snapshot(self) -> list[ProviderHealth]:
        """Every venue's stream as a ``<venue>_stream`` row (the engine's ``/providers``)."""
        return [self.health(status) for status in self.manager.statuses()]

    async def publish_health(self, *, force: bool = False) -> None:
        for status in self.manager.statuses():
            key = (status.state, status.reason)
            if not force and self._reported.get(status.venue) == key:
                continue
            self._reported[status.venue] = key
            health = self.health(status)
            subject = self.subjects.provider_health(health.provider_id)
            await self.engine.publish("health", subject, dumps(health))

    async def _health_loop(self, stop: asyncio.Event) -> None:
        last_full = float("-inf")
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            now = loop.time()
            force = now - last_full >= self.settings.stream_health_s
            if force:
                last_full = now
            try:
                await self.publish_health(force=force)
            except Exception:
                log.exception("stream health failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)

    def statuses(self) -> list[VenueStatus]:
        return self.manager.statuses()

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "streaming starting",
            extra={"venues": [s.venue for s in self.manager.streams.values()]},
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(self.manager.run(stop))
            group.create_task(self._health_loop(stop))


def encode_tick(tick: Tick) -> bytes:
    """The tick as ``StreamTick`` JSON, written directly: the protocol already checked the
    price (finite, positive), so the model's validation would only cost time on every tick.

    >>> from pricewire_contracts import StreamTick
    >>> t = Tick("binance", "BTC", "BTCUSDT", 101.5, received_at=1.25, sequence=7)
    >>> StreamTick.model_validate_json(encode_tick(t)).price
    101.5
    >>> encode_tick(t) == dumps(StreamTick(venue="binance", symbol="BTC", pair="BTCUSDT",
    ...     price=101.5, received_at=1.25, sequence=7))
    True
    """
    event = {
        "venue": tick.venue,
        "symbol": tick.symbol,
        "pair": tick.pair,
        "price": tick.price,
        "exchange_ts": tick.exchange_ts,
        "received_at": round(tick.received_at, 6),
        "volume_24h": tick.volume_24h,
        "change_24h": tick.change_24h,
        "sequence": tick.sequence,
    }
    return orjson.dumps({k: v for k, v in event.items() if v is not None})


def _stream_health(status: VenueStatus) -> StreamHealth:
    return StreamHealth(
        state=status.state,
        reason=status.reason,
        ticks=status.ticks,
        reconnects=status.reconnects,
        stalls=status.stalls,
        sequence_gaps=status.sequence_gaps,
        malformed=status.malformed,
        last_fault=status.last_fault,
        last_tick_at=round(status.last_tick_at, 3) if status.last_tick_at else None,
    )
