"""Simulated venues: one local WebSocket server per venue, speaking that venue's protocol
(subscribe and acknowledgement, pings, heartbeats, tick shapes, sequence numbers, limits),
with prices from the simulator's :class:`~pricewire_ingest.simulator.world.MarketWorld`.

Every ``tick_interval_s`` the venue makes one tick per subscribed pair (its sequence number
one more than the last, across connections, as a venue numbers its trades) and sends it to
every connection subscribed to the pair. Fault modes (:meth:`VenueServer.fault`):

- ``stall``: the open connections go silent (no ticks, heartbeats or answers) and stay open;
- ``disconnect``: the open connections are dropped without a close frame;
- ``sequence_gap``: each open connection misses the next ``gap`` ticks;
- ``malformed``: each open connection gets an unreadable frame and a tick with price 0;
- ``too_many_requests``: the open connections are closed with 1008 "Too many requests";
- ``down``: for ``duration_s`` the venue refuses connections (HTTP 503) after dropping the
  open ones.

Besides, a client sending faster than the venue's message rate is closed with 1008, and a
connection older than ``max_connection_s`` is closed (Binance's 24 h).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

import orjson
from starlette.requests import Request as Request_
from starlette.responses import JSONResponse
from starlette.responses import Response as Response_
from starlette.routing import Route
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ...catalog import Asset
from ...streaming import PROTOCOLS
from ..world import MarketWorld
from .dialects import DIALECTS, Dialect, TickValues

__all__ = [
    "FAULT_MODES",
    "FaultMode",
    "VenueHub",
    "VenueServer",
    "start_hub",
    "start_venues",
    "venue_routes",
]

log = logging.getLogger("pricewire.simulator.venues")

FaultMode = Literal["stall", "disconnect", "sequence_gap", "malformed", "too_many_requests", "down"]
FAULT_MODES: tuple[FaultMode, ...] = (
    "stall",
    "disconnect",
    "sequence_gap",
    "malformed",
    "too_many_requests",
    "down",
)


@dataclass(eq=False)
class _Client:
    ws: ServerConnection
    dialect: Dialect
    opened: float
    pairs: list[str] = field(default_factory=list)
    silent: bool = False
    drop_next: int = 0
    garble_next: bool = False
    received: deque[float] = field(default_factory=deque)
    last_heartbeat: float = 0.0


class VenueServer:
    """One simulated venue on ``127.0.0.1`` (a free port unless ``port`` is given)."""

    def __init__(
        self,
        venue: str,
        world: MarketWorld,
        assets: Sequence[Asset],
        *,
        tick_interval_s: float = 0.1,
        max_connection_s: float | None = None,
        volume_share: float = 0.1,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.venue = venue
        self.world = world
        self.assets = list(assets)
        self.rest_provider = PROTOCOLS[venue].rest_provider
        self.tick_interval_s = tick_interval_s
        self.max_connection_s = max_connection_s
        self.volume_share = volume_share
        self.host = host
        self.port = port
        self.path = ""  #: under a VenueHub: /<venue>
        self.clock = clock
        self.rng = random.Random(seed)
        self.clients: set[_Client] = set()
        self.sequence: dict[str, int] = {}
        self.wiggle: dict[str, float] = {}
        self.down_until = 0.0
        self.accepted = 0
        self.refused = 0
        self.sent_ticks = 0
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- life cycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path}"

    async def start(self, *, listen: bool = True) -> VenueServer:
        """Start ticking, and listen on a port of its own (unless a :class:`VenueHub` routes
        connections to :meth:`handle`)."""
        if listen:
            self._server = await serve(
                self.handle,
                self.host,
                self.port,
                process_request=self.admit,
                ping_interval=20.0,  # the venue's pings (control frames), as Binance sends them
                ping_timeout=60.0,
            )
            self.port = next(iter(self._server.sockets)).getsockname()[1]
            log.info("simulated venue listening", extra={"venue": self.venue, "port": self.port})
        self._ticker = asyncio.create_task(self._tick_loop(), name=f"sim-{self.venue}-ticks")
        return self

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)

    # -- faults --------------------------------------------------------------------------
    def fault(self, mode: FaultMode, *, duration_s: float = 60.0, gap: int = 5) -> None:
        """Inject a fault now (see the module's docstring)."""
        clients = list(self.clients)
        if mode == "stall":
            for c in clients:
                c.silent = True
        elif mode == "disconnect":
            for c in clients:
                c.ws.transport.abort()
        elif mode == "sequence_gap":
            for c in clients:
                c.drop_next = max(1, gap) * max(1, len(c.pairs))
        elif mode == "malformed":
            for c in clients:
                c.garble_next = True
        elif mode == "too_many_requests":
            for c in clients:
                self._spawn(c.ws.close(1008, "Too many requests"))
        elif mode == "down":
            self.down_until = self.clock() + duration_s
            for c in clients:
                c.ws.transport.abort()
        log.info("venue fault", extra={"venue": self.venue, "mode": mode})

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def heal(self) -> None:
        """End a ``down`` fault early."""
        self.down_until = 0.0

    # -- connections ---------------------------------------------------------------------
    def admit(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.clock() < self.down_until:
            self.refused += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "venue down\n")
        return None

    async def handle(self, ws: ServerConnection) -> None:
        self.accepted += 1
        client = _Client(ws, DIALECTS[self.venue](self.assets), self.clock())
        self.clients.add(client)
        try:
            for message in client.dialect.welcome():
                await ws.send(message)
            async for raw in ws:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                if self._too_fast(client):
                    await ws.close(1008, "Too many requests")
                    return
                reply = client.dialect.on_message(text, len(client.pairs))
                if client.silent:
                    continue
                client.pairs.extend(p for p in reply.subscribe if p not in client.pairs)
                for message in reply.messages:
                    await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)

    def _too_fast(self, client: _Client) -> bool:
        rate = client.dialect.messages_per_s
        if rate is None:
            return False
        now = time.monotonic()
        client.received.append(now)
        while client.received and now - client.received[0] > 1.0:
            client.received.popleft()
        return len(client.received) > rate

    # -- ticks ---------------------------------------------------------------------------
    def price(self, pair: str, symbol: str, now: float) -> float:
        """The world's price as this venue sees it, with a small sub-second wiggle."""
        wiggle = self.wiggle.get(pair, 0.0) + self.rng.gauss(0.0, 2e-5)
        self.wiggle[pair] = max(-5e-4, min(5e-4, wiggle))
        return self.world.provider_price(symbol, self.rest_provider, now) * (1 + self.wiggle[pair])

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval_s)
            try:
                await self._tick_once()
            except Exception:
                log.exception("simulated venue tick failed", extra={"venue": self.venue})

    async def _tick_once(self) -> None:
        now = self.clock()
        clients = [c for c in self.clients if not c.silent]
        for c in clients:
            if self.max_connection_s is not None and now - c.opened >= self.max_connection_s:
                c.silent = True
                self._spawn(c.ws.close(1000, "connection age limit"))
        clients = [c for c in clients if not c.silent]
        wanted = {p for c in clients for p in c.pairs}
        frames: dict[str, tuple[str, str]] = {}
        for pair in wanted:
            any_dialect = next(c.dialect for c in clients if pair in c.pairs)
            symbol = any_dialect.pairs[pair]
            seq = self.sequence.get(pair, self.rng.randrange(1_000, 1_000_000)) + 1
            self.sequence[pair] = seq
            price = self.price(pair, symbol, now)
            volume = self.world.volume(symbol) * self.volume_share / price
            open_ = self.world.open_24h(symbol)
            values = TickValues(price, volume, open_, seq, now)
            bad = TickValues(0.0, volume, open_, seq, now)
            frames[pair] = (any_dialect.tick(pair, values), any_dialect.tick(pair, bad))
        for c in clients:
            await self._send_ticks(c, frames, now)

    async def _send_ticks(self, c: _Client, frames: dict[str, tuple[str, str]], now: float) -> None:
        try:
            if c.garble_next:
                c.garble_next = False
                await c.ws.send('{"garbled": [1, 2')
                if c.pairs:
                    await c.ws.send(frames[c.pairs[0]][1])
            for pair in c.pairs:
                if c.drop_next > 0:
                    c.drop_next -= 1
                    continue
                await c.ws.send(frames[pair][0])
                self.sent_ticks += 1
            beat = c.dialect.heartbeat_s
            if beat is not None and now - c.last_heartbeat >= beat and c.pairs:
                c.last_heartbeat = now
                for message in c.dialect.heartbeat(c.pairs, now, max(self.sequence.values())):
                    await c.ws.send(message)
        except ConnectionClosed:
            pass


class VenueHub:
    """All simulated venues on one port: ``ws://host:port/<venue>`` (``make demo``: the ingest's
    stream URL override is ``ws://host:port``, one venue per path)."""

    def __init__(self, venues: dict[str, VenueServer], *, host: str = "127.0.0.1", port: int = 0):
        self.venues = venues
        self.host = host
        self.port = port
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _venue(self, path: str) -> VenueServer | None:
        return self.venues.get(path.strip("/").split("/", 1)[0].split("?", 1)[0])

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        venue = self._venue(request.path)
        if venue is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "no such venue\n")
        return venue.admit(connection, request)

    async def _route(self, ws: ServerConnection) -> None:
        venue = self._venue(ws.request.path if ws.request else "")
        if venue is not None:
            await venue.handle(ws)

    async def start(self) -> VenueHub:
        for venue in self.venues.values():
            await venue.start(listen=False)
        self._server = await serve(
            self._route,
            self.host,
            self.port,
            process_request=self._admit,
            ping_interval=20.0,
            ping_timeout=60.0,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        for venue in self.venues.values():
            venue.host, venue.port, venue.path = self.host, self.port, f"/{venue.venue}"
        log.info(
            "simulated venues listening", extra={"port": self.port, "venues": len(self.venues)}
        )
        return self

    async def stop(self) -> None:
        for venue in self.venues.values():
            await venue.stop()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)


async def start_venues(
    world: MarketWorld,
    assets: Sequence[Asset],
    *,
    venues: Sequence[str] | None = None,
    tick_interval_s: float = 0.1,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    seed: int | None = None,
) -> dict[str, VenueServer]:
    """Start one simulated venue per name (all six by default); free ports unless given."""
    servers: dict[str, VenueServer] = {}
    for venue in venues or list(DIALECTS):
        server = VenueServer(
            venue,
            world,
            assets,
            tick_interval_s=tick_interval_s,
            host=host,
            port=(ports or {}).get(venue, 0),
            seed=seed,
        )
        servers[venue] = await server.start()
    return servers


async def start_hub(
    world: MarketWorld,
    assets: Sequence[Asset],
    *,
    venues: Sequence[str] | None = None,
    tick_interval_s: float = 0.1,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int | None = None,
) -> VenueHub:
    """All simulated venues on one port, ``ws://host:port/<venue>``."""
    servers = {
        venue: VenueServer(
            venue, world, assets, tick_interval_s=tick_interval_s, host=host, seed=seed
        )
        for venue in venues or list(DIALECTS)
    }
    return await VenueHub(servers, host=host, port=port).start()


def venue_routes(hub: VenueHub) -> list[Route]:
    """``POST /_venues/faults`` (``{"binance": {"mode": "stall"}, "okx": {"mode": "down",
    "duration_s": 60}}``; ``null`` heals a down venue) and ``GET /_venues`` (counters), for the
    simulator's HTTP app."""

    async def faults(request: Request_) -> Response_:
        try:
            body = orjson.loads(await request.body())
            if not isinstance(body, dict):
                raise TypeError("expected an object")
            for name, spec in body.items():
                venue = hub.venues[name]
                if spec is None:
                    venue.heal()
                    continue
                mode = spec["mode"]
                if mode not in FAULT_MODES:
                    raise ValueError(f"unknown mode {mode!r}")
                venue.fault(
                    mode,
                    duration_s=float(spec.get("duration_s", 60.0)),
                    gap=int(spec.get("gap", 5)),
                )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    async def counters(request: Request_) -> Response_:
        return JSONResponse(
            {
                name: {
                    "url": v.url,
                    "accepted": v.accepted,
                    "refused": v.refused,
                    "clients": len(v.clients),
                    "sent_ticks": v.sent_ticks,
                }
                for name, v in hub.venues.items()
            }
        )

    return [
        Route("/_venues/faults", faults, methods=["POST"]),
        Route("/_venues", counters, methods=["GET"]),
    ]
