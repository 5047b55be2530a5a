"""Load agent: many WebSocket clients in one process (picows on uvloop), driven over stdin.

Two client dialects:

- ``pricewire`` (the edge and the naive manager): wait for ``welcome``, send
  ``{"type":"subscribe","group":"prices"}``, ready on ``subscribed``; every frame holding
  ``"price_update"`` is one delivery.
- ``nats`` (nats-server's WebSocket listener): on ``INFO`` send ``CONNECT``, ``SUB`` and
  ``PING``; ready on ``PONG``; every ``MSG`` is one delivery (the server packs several into
  one WebSocket frame), and a server ``PING`` gets a ``PONG``.

The hot path does as little as it can, so that the clients' core is not what limits a
saturated server: a substring test and two counters, one clock read per socket read (not per
frame) to put them in the measuring window and, for sampled clients only, one clock read and
one regular-expression search for the publish time the publisher put in ``data.updated_at``. Latency is receive time minus that
publish time (same clock, same host).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import resource
import time
from array import array
from collections import Counter
from collections.abc import Callable

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.agent import raise_nofile_limit, serve, setup_agent_logging
from bench.lean import LeanClient, open_lean
from bench.probe import OP_BINARY, OP_TEXT, Probe
from bench.protocol import (
    ArmRestart,
    AwaitBack,
    Back,
    CloseAll,
    Command,
    Connect,
    Connected,
    Done,
    Failed,
    Latency,
    Measure,
    Measured,
    Message,
    Proto,
)
from bench.report import percentile

log = logging.getLogger("bench.load")

_time = time.time
_PRICE = b'"price_update"'
_PRICE_AT = b"price_update"  # data[9:21] of '{"type":"price_update"'
_WELCOME = b'"welcome"'
_SUBSCRIBED = b'"subscribed"'
_TS = re.compile(rb'"updated_at":\s*([0-9.eE+-]+)')
SUBSCRIBE = b'{"type":"subscribe","group":"prices"}'
_CONNECT = (
    b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"echo":false,'
    b'"lang":"python","version":"bench","headers":false,"no_responders":false}\r\n'
)
_NEVER = math.inf


class Window:
    """What the clients record between ``t0`` and ``t1``; shared by every listener."""

    __slots__ = ("bytes", "deliveries", "lat", "t0", "t1", "wire")

    def __init__(self, t0: float = _NEVER, t1: float = _NEVER) -> None:
        self.t0 = t0
        self.t1 = t1
        self.deliveries = 0
        self.bytes = 0
        self.lat = array("d")  # as the load agent's clients read it (includes their sweep)
        self.wire = array("d")  # as the kernel received it on the probes' sockets


class Client:
    """One simulated user, across reconnects."""

    __slots__ = (
        "back_at",
        "close_code",
        "closed_at",
        "count",
        "fleet",
        "idx",
        "nbytes",
        "ready",
        "ready_at",
        "returning",
        "sample",
        "settled",
        "settled_bytes",
        "transport",
        "wcount",
        "welcomed_at",
    )

    def __init__(self, fleet: Fleet, idx: int) -> None:
        self.fleet = fleet
        self.idx = idx
        self.transport: WSTransport | LeanClient | None = None
        self.count = 0  # deliveries, whole life
        self.nbytes = 0  # their payload bytes
        self.settled = self.settled_bytes = 0  # what settle() has put in a window so far
        self.wcount = 0  # deliveries in the current window
        self.sample = False
        self.welcomed_at = 0.0
        self.ready_at = 0.0
        self.ready: asyncio.Future[bool] | None = None
        self.close_code: int | None = None
        self.closed_at = 0.0
        self.back_at = 0.0
        self.returning = False  # a reconnect loop owns this client

    def settle(self) -> None:
        """At the end of a read: its deliveries count in the window if it is open now (one
        clock read per read, not per frame)."""
        n = self.count - self.settled
        if n:
            now = _time()
            w = self.fleet.window
            if w.t0 <= now < w.t1:
                self.wcount += n
                w.deliveries += n
                w.bytes += self.nbytes - self.settled_bytes
            self.settled, self.settled_bytes = self.count, self.nbytes

    def sample_latency(self, stamps: list[bytes]) -> None:
        """Publish times read off delivered frames, now (a lean client's sampled reads)."""
        now = _time()
        w = self.fleet.window
        if w.t0 <= now < w.t1:
            for ts in stamps:
                w.lat.append((now - float(ts)) * 1e3)

    def on_close_payload(self, payload: bytes) -> None:
        if self.close_code is None:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005

    def on_welcome(self) -> None:
        self.welcomed_at = _time()

    def on_ready(self) -> None:
        self.ready_at = _time()
        plan = self.fleet.restart
        if plan is not None and self.closed_at and not self.back_at:
            self.back_at = self.ready_at
            plan.back += 1
            if plan.back >= plan.n:
                plan.all_back.set()
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(True)

    def on_close_frame(self, transport: WSTransport, payload: bytes) -> None:
        self.on_close_payload(payload)
        # answer the close handshake so the server is not left waiting for it
        transport.send_close(WSCloseCode.OK)
        transport.disconnect()

    def on_disconnected(self) -> None:
        self.transport = None
        if not self.closed_at:
            self.closed_at = _time()
        if self.close_code is None:
            self.close_code = 1006  # no close frame: the TCP connection just went
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(False)
        self.fleet.on_disconnected(self)


class PricewireListener(WSListener):
    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        data = frame.get_payload_as_bytes()
        c = self.client
        # where the servers put it ({"type":"price_update",...}), else anywhere: the slice is
        # a quarter of the cost of the search, which only the rare other frames pay
        if data[9:21] == _PRICE_AT or _PRICE in data:
            c.count += 1
            c.nbytes += len(data)
            if c.sample:
                now = _time()
                w = c.fleet.window
                if w.t0 <= now < w.t1:
                    m = _TS.search(data)
                    if m is not None:
                        w.lat.append((now - float(m.group(1))) * 1e3)
            if frame.last_in_buffer:
                c.settle()
            return
        if frame.last_in_buffer:
            c.settle()
        if frame.msg_type == WSMsgType.CLOSE:
            c.on_close_frame(transport, data)
        elif _WELCOME in data:
            c.on_welcome()
            transport.send(WSMsgType.TEXT, SUBSCRIBE)
        elif _SUBSCRIBED in data:
            c.on_ready()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.client.on_disconnected()


class NatsListener(WSListener):
    def __init__(self, client: Client, subject: str) -> None:
        super().__init__()
        self.client = client
        self.hello = _CONNECT + f"SUB {subject} 1\r\nPING\r\n".encode()
        self.subscribed = False

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        data = frame.get_payload_as_bytes()
        c = self.client
        n = data.count(b"MSG ")
        if n:
            c.count += n
            c.nbytes += len(data)
            if c.sample:
                now = _time()
                w = c.fleet.window
                if w.t0 <= now < w.t1:
                    for ts in _TS.findall(data):
                        w.lat.append((now - float(ts)) * 1e3)
            if frame.last_in_buffer:
                c.settle()
            if self.subscribed and b"PING\r\n" not in data:
                return
        if frame.msg_type == WSMsgType.CLOSE:
            c.on_close_frame(transport, data)
            return
        if data.startswith(b"INFO "):
            c.on_welcome()
            transport.send(WSMsgType.BINARY, self.hello)
        if b"PING\r\n" in data:
            transport.send(WSMsgType.BINARY, b"PONG\r\n")
        if not self.subscribed and b"PONG\r\n" in data:
            self.subscribed = True
            c.on_ready()
        if b"-ERR" in data:
            log.warning("nats error: %s", data[:200])

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.client.on_disconnected()


class Restart:
    """Reconnect plan armed before the edge is told to stop."""

    def __init__(self, url: str, jitter_s: float, deadline: float, n: int) -> None:
        self.n = n
        self.back = 0
        self.all_back = asyncio.Event()
        self.url = url
        self.jitter_s = jitter_s
        self.deadline = deadline
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors: Counter[str] = Counter()


class Fleet:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.probes: list[Probe] = []
        self.window = Window()
        self.restart: Restart | None = None
        self.proto: Proto = "pricewire"
        self.subject = "pricewire.v1.price.*"
        self.lean = False  # LeanClient instead of picows (the rate scenarios, see bench.lean)

    # -- connections ---------------------------------------------------------------------
    def _factory(self, client: Client) -> Callable[[], WSListener]:
        if self.proto == "nats":
            return lambda: NatsListener(client, self.subject)
        return lambda: PricewireListener(client)

    async def open(self, client: Client, url: str, timeout_s: float) -> str | None:
        """Connect once; ``None`` when subscribed, else why not."""
        client.ready = asyncio.get_running_loop().create_future()
        if self.lean:
            return await self._open_lean(client, url, timeout_s)
        try:
            transport, _ = await ws_connect(
                self._factory(client),
                url,
                websocket_handshake_timeout=timeout_s,
                read_buffer_init_size=4096,
            )
        except Exception as exc:  # refused, reset, handshake timeout: all count as failures
            return type(exc).__name__
        return await self._ready(client, transport, timeout_s)

    @staticmethod
    async def _ready(
        client: Client, transport: WSTransport | LeanClient, timeout_s: float
    ) -> str | None:
        """Connected: ``None`` once subscribed, else why not."""
        assert client.ready is not None
        client.transport = transport
        try:
            ok = await asyncio.wait_for(client.ready, timeout_s)
        except TimeoutError:
            transport.disconnect()
            return "ready_timeout"
        return None if ok else "closed_before_ready"

    async def _open_lean(self, client: Client, url: str, timeout_s: float) -> str | None:
        hello = (
            _CONNECT + f"SUB {self.subject} 1\r\nPING\r\n".encode()
            if self.proto == "nats"
            else SUBSCRIBE
        )
        try:
            lean = await asyncio.wait_for(open_lean(client, url, self.proto, hello), timeout_s)
        except Exception as exc:
            return type(exc).__name__
        return await self._ready(client, lean, timeout_s)

    def _on_probe_payload(self, probe: Probe, payload: bytes, stamp: float) -> None:
        w = self.window
        if self.proto == "nats":
            if b"MSG " in payload and w.t0 <= stamp < w.t1:
                for ts in _TS.findall(payload):
                    w.wire.append((stamp - float(ts)) * 1e3)
            if payload.startswith(b"INFO "):
                probe.send(OP_BINARY, _CONNECT + f"SUB {self.subject} 1\r\nPING\r\n".encode())
            if b"PING\r\n" in payload:
                probe.send(OP_BINARY, b"PONG\r\n")
            if b"PONG\r\n" in payload and not probe.ready.done():
                probe.ready.set_result(True)
            return
        if _PRICE in payload:
            if w.t0 <= stamp < w.t1:
                m = _TS.search(payload)
                if m is not None:
                    w.wire.append((stamp - float(m.group(1))) * 1e3)
        elif _WELCOME in payload:
            probe.send(OP_TEXT, SUBSCRIBE)
        elif _SUBSCRIBED in payload and not probe.ready.done():
            probe.ready.set_result(True)

    async def open_probe(self, url: str, timeout_s: float) -> str | None:
        probe = Probe(self._on_probe_payload)
        try:
            await probe.open(url, timeout_s)
            ok = await asyncio.wait_for(probe.ready, timeout_s)
        except Exception as exc:
            probe.close()
            return f"probe {type(exc).__name__}"
        if not ok:
            return "probe closed"
        self.probes.append(probe)
        return None

    async def connect(self, cmd: Connect) -> Connected:
        self.proto = cmd.proto
        self.subject = cmd.subject
        self.lean = cmd.lean
        start = _time()
        deadline = start + cmd.timeout_s
        sem = asyncio.Semaphore(cmd.concurrency)
        errors: Counter[str] = Counter()
        new = [Client(self, len(self.clients) + i) for i in range(cmd.n)]
        self.clients.extend(new)
        # probes spread through the connection order, wherever the server's fan-out starts
        probe_at = {int((i + 0.5) * cmd.n / cmd.probes) for i in range(cmd.probes)}

        async def one(k: int, client: Client) -> bool:
            async with sem:
                for attempt in range(cmd.attempts):
                    left = deadline - _time()
                    if left <= 0:
                        errors["deadline"] += 1
                        return False
                    why = await self.open(client, cmd.url, min(left, 15.0))
                    if why is None:
                        if k in probe_at:
                            failed = await self.open_probe(cmd.url, min(left, 15.0))
                            if failed:
                                errors[failed] += 1
                        return True
                    errors[why] += 1
                    await asyncio.sleep(min(0.1 * 2**attempt, 1.0) * random.random())
                return False

        results = await asyncio.gather(*(one(k, c) for k, c in enumerate(new)))
        ok = [c for c, r in zip(new, results, strict=True) if r]
        self.clients = [c for c in self.clients if c.transport is not None]
        return Connected(
            requested=cmd.n,
            ready=len(ok),
            failed=cmd.n - len(ok),
            welcome_s=max(c.welcomed_at for c in ok) - start if ok else None,
            ready_s=max(c.ready_at for c in ok) - start if ok else None,
            open=len(self.clients),
            probes=len(self.probes),
            errors=dict(errors),
        )

    async def close_all(self, cmd: CloseAll) -> Done:
        self.restart = None
        for probe in self.probes:
            probe.close()
        self.probes = []
        transports = [c.transport for c in self.clients if c.transport is not None]
        for transport in transports:
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(t.wait_disconnected() for t in transports)), cmd.timeout_s
            )
        self.clients = []
        return Done()

    # -- measuring -------------------------------------------------------------------------
    async def measure(self, cmd: Measure) -> Measured:
        """Deliveries are counted in the window when the read that brought them ends in it
        (:meth:`Client.settle`): exact even when this process runs late, and cheap."""
        for c in self.clients:
            c.wcount = 0
            c.sample = c.idx % cmd.latency_every == 0
        self.window = w = Window(cmd.t0, cmd.t1)
        await asyncio.sleep(max(0.0, cmd.t0 - _time()))
        cpu0 = _cpu_s()
        await asyncio.sleep(max(0.0, cmd.t1 - _time()))
        cpu1 = _cpu_s()
        await asyncio.sleep(0.02)  # frames stamped just before t1 still in the callback
        self.window = Window()
        live = [c for c in self.clients if c.transport is not None]
        counts = [c.wcount for c in live] or [0]
        lat = sorted(w.lat)
        wire = sorted(w.wire)
        return Measured(
            seconds=cmd.t1 - cmd.t0,
            deliveries=w.deliveries,
            bytes=w.bytes,
            open=len(live),
            min_per_client=min(counts),
            max_per_client=max(counts),
            silent_clients=sum(1 for n in counts if n == 0) if live else 0,
            latency=_summary(lat),
            wire=_summary(wire),
            cpu_s=cpu1 - cpu0,
        )

    # -- restart ---------------------------------------------------------------------------
    def arm_restart(self, cmd: ArmRestart) -> Done:
        for c in self.clients:
            c.close_code = None
            c.closed_at = 0.0
            c.back_at = 0.0
        self.restart = Restart(cmd.url, cmd.jitter_s, _time() + cmd.deadline_s, len(self.clients))
        return Done()

    def on_disconnected(self, client: Client) -> None:
        plan = self.restart
        if plan is None or client.returning:
            return
        client.returning = True
        task = asyncio.get_running_loop().create_task(self._come_back(client, plan))
        plan.tasks.add(task)
        task.add_done_callback(plan.tasks.discard)

    async def _come_back(self, client: Client, plan: Restart) -> None:
        # the guide's advice on 1012: reconnect with jitter, then back off on failure
        try:
            await asyncio.sleep(random.uniform(0, plan.jitter_s))
            backoff = 0.25
            while self.restart is plan and _time() < plan.deadline:
                left = plan.deadline - _time()
                why = await self.open(client, plan.url, min(10.0, max(0.1, left)))
                if why is None:
                    return
                plan.errors[why] += 1
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 2.0)
        finally:
            client.returning = False

    async def await_back(self, cmd: AwaitBack) -> Back:
        plan = self.restart
        if plan is None:
            raise RuntimeError("await_back without arm_restart")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(plan.all_back.wait(), cmd.timeout_s)
        closed = [c for c in self.clients if c.closed_at]
        back = [c for c in self.clients if c.back_at]
        codes = Counter(str(c.close_code) for c in closed)
        result = Back(
            n=len(self.clients),
            closed=len(closed),
            back=len(back),
            close_codes=dict(codes),
            first_close_at=min((c.closed_at for c in closed), default=None),
            last_close_at=max((c.closed_at for c in closed), default=None),
            last_back_at=max((c.back_at for c in back), default=None),
            max_gap_s=max((c.back_at - c.closed_at for c in back), default=None),
            errors=dict(plan.errors),
        )
        self.restart = None
        for task in list(plan.tasks):
            task.cancel()
        return result

    async def handle(self, cmd: Command) -> Message:
        if isinstance(cmd, Connect):
            return await self.connect(cmd)
        if isinstance(cmd, Measure):
            return await self.measure(cmd)
        if isinstance(cmd, ArmRestart):
            return self.arm_restart(cmd)
        if isinstance(cmd, AwaitBack):
            return await self.await_back(cmd)
        if isinstance(cmd, CloseAll):
            return await self.close_all(cmd)
        return Failed(error=f"the load agent does not do {cmd.cmd}")


def _summary(ordered: list[float]) -> Latency | None:
    if not ordered:
        return None
    return Latency(
        count=len(ordered),
        p50_ms=percentile(ordered, 50),
        p90_ms=percentile(ordered, 90),
        p99_ms=percentile(ordered, 99),
        max_ms=ordered[-1],
    )


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    import uvloop

    setup_agent_logging("load")
    logging.getLogger("picows").setLevel(logging.ERROR)
    raise_nofile_limit()
    fleet = Fleet()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(fleet.handle))


if __name__ == "__main__":
    main()
