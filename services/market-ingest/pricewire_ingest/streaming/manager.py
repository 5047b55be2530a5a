"""The connection manager: keeps each venue's stream subscribed and honest.

For every venue (:class:`VenueStream`), the pairs are split over as many connections as the
venue's streams-per-connection limit needs. Each connection:

- connects (new connections paced to the venue's per-IP rate), subscribes (messages paced to
  the venue's messages-per-second limit), answers the venue's pings and sends its own
  application-level pings when the venue wants them (control-frame pings are answered by the
  ``websockets`` library);
- reconnects when no message came for the venue's stall limit (a *silent stall*: the socket
  stays open and data stops), when the venue closes or asks for it, on an error that says
  too many requests, and before the venue's maximum connection age;
- waits a full-jitter exponential backoff before each reconnect (not after a rotation or a
  venue's request) and resubscribes;
- checks sequence numbers: a gap is counted and the message taken (a ticker carries the whole
  state: the next message resynchronises), a message not newer than the last is dropped;
- counts and drops malformed frames; only a finite, positive price becomes a tick.

:meth:`VenueStream.status` says ``live``, ``degraded`` or ``offline`` with a reason, for
``provider_stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from pricewire_common.ratelimit import TokenBucket

from ..core.limits import full_jitter
from . import metrics
from .protocol import Frame, Tick, VenueProtocol
from .sequence import SequenceTracker

__all__ = [
    "StreamManager",
    "StreamState",
    "StreamTuning",
    "TickSink",
    "VenueStatus",
    "VenueStream",
]

log = logging.getLogger("pricewire.ingest.stream")

StreamState = Literal["live", "degraded", "offline"]
ReconnectReason = Literal[
    "stall", "closed", "error", "rate_limited", "venue_request", "rotate", "connect_failed"
]
TickSink = Callable[[Tick], Awaitable[None]]

_STATES: tuple[StreamState, ...] = ("live", "degraded", "offline")


@dataclass(frozen=True, slots=True)
class StreamTuning:
    """How the manager behaves (the settings fill it in)."""

    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    open_timeout_s: float = 10.0
    #: a venue with no live connection for this long is ``offline`` (before: ``degraded``)
    offline_after_s: float = 30.0
    #: a rotation this long before the venue's maximum connection age
    rotate_margin_s: float = 300.0
    max_message_bytes: int = 1 << 22
    user_agent: str = "pricewire-ingest/0.1 (market data monitor)"


@dataclass(frozen=True, slots=True)
class VenueStatus:
    venue: str
    state: StreamState
    reason: str | None
    connections: int
    live_connections: int
    ticks: int
    messages: int
    malformed: int
    sequence_gaps: int
    stale: int
    stalls: int
    reconnects: int
    errors: int
    last_tick_at: float | None  #: unix seconds
    last_fault: str | None  #: the latest thing that went wrong, for the panel


@dataclass
class _Slot:
    """One connection's share of the venue's pairs and what became of it."""

    index: int
    pairs: list[str]
    live: bool = False
    down_since: float | None = None  #: monotonic
    reason: str | None = "not connected yet"
    attempts: int = 0


@dataclass
class _Counts:
    ticks: int = 0
    messages: int = 0
    malformed: int = 0
    gaps: int = 0
    stale: int = 0
    stalls: int = 0
    reconnects: int = 0
    errors: int = 0


class _Pacer:
    """At most ``rate_per_s`` events per second, evenly spaced (a token bucket with no burst);
    a rate of 0 paces nothing."""

    def __init__(self, rate_per_s: float, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._bucket = (
            TokenBucket(rate=rate_per_s, burst=1, now=clock()) if rate_per_s > 0 else None
        )

    async def wait(self) -> None:
        if self._bucket is not None and (delay := self._bucket.reserve(self.clock())) > 0:
            await asyncio.sleep(delay)


class _SessionEnd(Exception):
    def __init__(self, why: ReconnectReason, detail: str) -> None:
        super().__init__(detail)
        self.why = why
        self.detail = detail


@dataclass
class VenueStream:
    """One venue's streams: connections, counters, status."""

    protocol: VenueProtocol
    url: str
    sink: TickSink
    stall_s: float | None = None  #: None: the venue's default
    tuning: StreamTuning = field(default_factory=StreamTuning)
    pairs: Sequence[str] | None = None  #: None: every catalog pair the venue lists
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        wanted = list(self.pairs) if self.pairs is not None else list(self.protocol.pairs)
        per = max(1, self.protocol.limits.streams_per_connection)
        self.slots = [
            _Slot(i, wanted[start : start + per])
            for i, start in enumerate(range(0, len(wanted), per))
        ]
        self.counts = _Counts()
        self.last_tick_at: float | None = None
        self.last_fault: str | None = None
        self.started_at = self.clock()
        self._connects = _Pacer(self.protocol.limits.connects_per_s, self.clock)
        self._sessions: dict[int, ClientConnection] = {}
        self._stopping = False

    @property
    def venue(self) -> str:
        return self.protocol.venue

    @property
    def stall_limit_s(self) -> float:
        return self.stall_s if self.stall_s is not None else self.protocol.limits.stall_s

    # -- status -------------------------------------------------------------------------
    def status(self) -> VenueStatus:
        now = self.clock()
        live = sum(1 for s in self.slots if s.live)
        down = [s for s in self.slots if not s.live]
        state: StreamState
        reason: str | None = None
        if not self.slots:
            state, reason = "offline", "no pair of the catalog is listed on this venue"
        elif not down:
            state = "live"
        else:
            reason = down[0].reason
            since = min((s.down_since or self.started_at) for s in down)
            # some connection live, or not down for long: degraded; the reason does not change
            # with the time down (the health is re-sent when state or reason change)
            recent = now - since < self.tuning.offline_after_s
            state = "degraded" if live or recent else "offline"
        c = self.counts
        return VenueStatus(
            venue=self.venue,
            state=state,
            reason=reason,
            connections=len(self.slots),
            live_connections=live,
            ticks=c.ticks,
            messages=c.messages,
            malformed=c.malformed,
            sequence_gaps=c.gaps,
            stale=c.stale,
            stalls=c.stalls,
            reconnects=c.reconnects,
            errors=c.errors,
            last_tick_at=self.last_tick_at,
            last_fault=self.last_fault,
        )

    def update_gauges(self) -> None:
        status = self.status()
        metrics.STREAM_CONNECTED.labels(self.venue).set(status.live_connections)
        for state in _STATES:
            metrics.STREAM_STATE.labels(self.venue, state).set(1 if state == status.state else 0)

    # -- the loops ----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Keep every connection up until ``stop`` is set."""
        self._stopping = False
        tasks = [
            asyncio.create_task(self._keep(slot), name=f"stream-{self.venue}-{slot.index}")
            for slot in self.slots
        ]
        try:
            await stop.wait()
        finally:
            self._stopping = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for slot in self.slots:
                slot.live = False
                slot.reason = "stopped"

    async def _keep(self, slot: _Slot) -> None:
        while not self._stopping:
            await self._connects.wait()
            try:
                await self._session(slot)
                end = _SessionEnd("closed", "connection ended")
            except _SessionEnd as exc:
                end = exc
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                end = _closed(exc)
            except InvalidStatus as exc:
                status = exc.response.status_code
                why: ReconnectReason = "rate_limited" if status in (418, 429) else "connect_failed"
                end = _SessionEnd(why, f"handshake refused: HTTP {status}")
            except (OSError, TimeoutError, WebSocketException) as exc:
                end = _SessionEnd("connect_failed", f"connect failed: {exc!r}")
            self._down(slot, end)
            if end.why in ("rotate", "venue_request"):
                delay = 0.0
            else:
                slot.attempts += 1
                # a venue that said "too many requests" gets a longer wait
                attempt = slot.attempts + (2 if end.why == "rate_limited" else 0)
                delay = full_jitter(
                    attempt - 1,  # the first reconnect waits up to backoff_base_s
                    base_s=self.tuning.backoff_base_s,
                    cap_s=self.tuning.backoff_cap_s,
                    rng=self.rng,
                )
            await asyncio.sleep(delay)

    def _down(self, slot: _Slot, end: _SessionEnd) -> None:
        was_live = slot.live
        slot.live = False
        if slot.down_since is None or was_live:
            slot.down_since = self.clock()
        slot.reason = _REASON_WORDS[end.why] + ": " + end.detail
        self.counts.reconnects += 1
        metrics.STREAM_RECONNECTS.labels(self.venue, end.why).inc()
        if end.why == "stall":
            self.counts.stalls += 1
            metrics.STREAM_STALLS.labels(self.venue).inc()
        if end.why != "rotate":
            self.last_fault = slot.reason
        log.log(
            logging.INFO if end.why == "rotate" else logging.WARNING,
            "stream reconnecting",
            extra={"venue": self.venue, "reason": end.why, "detail": end.detail},
        )
        self.update_gauges()

    def _up(self, slot: _Slot) -> None:
        if not slot.live:
            slot.live = True
            slot.down_since = None
            slot.reason = None
            log.info("stream live", extra={"venue": self.venue, "connection": slot.index})
            self.update_gauges()

    async def _session(self, slot: _Slot) -> None:
        protocol = self.protocol
        limits = protocol.limits
        url = protocol.connect_url(self.url, slot.pairs)
        async with connect(
            url,
            open_timeout=self.tuning.open_timeout_s,
            close_timeout=1.0,
            max_size=self.tuning.max_message_bytes,
            user_agent_header=self.tuning.user_agent,
            # a transport keep-alive; liveness is judged on messages (the stall limit)
            ping_interval=20.0,
            ping_timeout=20.0,
        ) as ws:
            self._sessions[slot.index] = ws
            try:
                await self._converse(ws, slot, limits.ping_interval_s, limits.max_connection_s)
            finally:
                self._sessions.pop(slot.index, None)

    async def _converse(
        self,
        ws: ClientConnection,
        slot: _Slot,
        ping_every_s: float | None,
        max_age_s: float | None,
    ) -> None:
        protocol = self.protocol
        sends = _Pacer(protocol.limits.messages_per_s, self.clock)
        tracker = SequenceTracker(protocol.sequence_mode)
        for message in protocol.subscribe_messages(slot.pairs):
            await sends.wait()
            await ws.send(message)
        opened = last_rx = last_tx = self.clock()
        stall_s = self.stall_limit_s
        rotate_at = (
            opened + max(max_age_s - self.tuning.rotate_margin_s, max_age_s / 2)
            if max_age_s
            else float("inf")
        )
        while True:
            now = self.clock()
            if now - last_rx >= stall_s:
                raise _SessionEnd("stall", f"no message for {stall_s:g} s")
            if now >= rotate_at:
                raise _SessionEnd("rotate", "the venue's connection age limit is near")
            ping_at = last_tx + ping_every_s if ping_every_s else float("inf")
            if now >= ping_at:
                text = protocol.ping()
                if text is not None:
                    await sends.wait()
                    await ws.send(text)
                last_tx = self.clock()
                continue
            wait = min(last_rx + stall_s, rotate_at, ping_at) - now
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can lose a cancellation
                # that races with a message, and the stream would never stop
                async with asyncio.timeout(max(wait, 0.001)):
                    raw = await ws.recv()
            except TimeoutError:
                continue
            last_rx = self.clock()
            frame = protocol.parse(raw, self.wall())
            await self._handle(ws, slot, frame, tracker)
            if frame.reply is not None:
                last_tx = self.clock()

    async def _handle(
        self, ws: ClientConnection, slot: _Slot, frame: Frame, tracker: SequenceTracker
    ) -> None:
        venue = self.venue
        self.counts.messages += 1
        metrics.STREAM_MESSAGES.labels(venue, frame.kind).inc()
        bad = (1 if frame.kind == "malformed" else 0) if not frame.dropped else frame.dropped
        if bad:
            self.counts.malformed += bad
            metrics.STREAM_MALFORMED.labels(venue).inc(bad)
            self.last_fault = f"malformed frame dropped: {frame.detail or 'invalid price'}"
        kind = frame.kind
        if kind == "ack":
            self._up(slot)
        elif kind == "ping" and frame.reply is not None:
            await ws.send(frame.reply)
        elif kind == "tick":
            for tick in frame.ticks:
                check = tracker.check(tick.pair, tick.sequence)
                if check == "stale":
                    self.counts.stale += 1
                    metrics.STREAM_STALE.labels(venue).inc()
                    continue
                if check == "gap":
                    self.counts.gaps += 1
                    metrics.STREAM_SEQUENCE_GAPS.labels(venue).inc()
                    self.last_fault = f"sequence gap on {tick.pair} before {tick.sequence}"
                await self._deliver(slot, tick)
        elif kind == "error":
            self.counts.errors += 1
            self.last_fault = f"venue error: {frame.detail}"
            log.warning("stream error", extra={"venue": venue, "detail": frame.detail})
            if frame.rate_limited:
                raise _SessionEnd("rate_limited", f"too many requests: {frame.detail}")
        elif kind == "reconnect":
            raise _SessionEnd("venue_request", frame.detail or "the venue asked to reconnect")

    async def _deliver(self, slot: _Slot, tick: Tick) -> None:
        self._up(slot)
        slot.attempts = 0
        self.counts.ticks += 1
        self.last_tick_at = tick.received_at
        metrics.STREAM_TICKS.labels(self.venue).inc()
        if tick.exchange_ts is not None:
            metrics.STREAM_TICK_LAG.labels(self.venue).observe(
                max(0.0, tick.received_at - tick.exchange_ts)
            )
        try:
            await self.sink(tick)
        except Exception:
            log.exception("tick sink failed", extra={"venue": self.venue})


_REASON_WORDS: dict[ReconnectReason, str] = {
    "stall": "stalled",
    "closed": "closed by the venue",
    "error": "venue error",
    "rate_limited": "rate limited",
    "venue_request": "venue asked to reconnect",
    "rotate": "rotating",
    "connect_failed": "cannot connect",
}


def _closed(exc: ConnectionClosed) -> _SessionEnd:
    frame = exc.rcvd
    if frame is None:
        return _SessionEnd("closed", "connection lost without a close frame")
    text = f"close {frame.code} {frame.reason}".strip()
    if frame.code == 1008 or "too many" in frame.reason.lower():
        return _SessionEnd("rate_limited", text)
    if frame.code == 1012:  # service restart
        return _SessionEnd("venue_request", text)
    return _SessionEnd("closed", text)


class StreamManager:
    """Every enabled venue's stream, one sink for their ticks."""

    def __init__(self, streams: Sequence[VenueStream]) -> None:
        self.streams = {s.venue: s for s in streams}

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for stream in self.streams.values():
                group.create_task(stream.run(stop))
            group.create_task(self._gauges(stop))

    async def _gauges(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for stream in self.streams.values():
                stream.update_gauges()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5.0)

    def statuses(self) -> list[VenueStatus]:
        return [s.status() for s in self.streams.values()]
