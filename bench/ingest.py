"""Ingest benchmark: simulated venue ticks through market-ingest, NATS and ws-edge to WebSocket
clients (``python -m bench.ingest``).

The simulator serves the six venues' WebSocket feeds (and the REST providers); market-ingest
streams from them and polls; ws-edge delivers ``price_update`` for BTC to ``--clients``
WebSocket clients spread over a few processes. The latency of each update is from the venue
frame's time (the tick's own timestamp, which ``updated_at`` carries: the freshest input of the
price) to the client's receive. Prints, last::

    ingest: tick-to-client p50 P ms p99 Q ms at N ticks/s (market-ingest C us CPU per tick)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import cpu_seconds
from pricewire_common.testing import NatsServer, ServiceProcess, free_port

__all__ = ["main", "summary"]


async def _clients(
    url: str, count: int, start_at: float, stop_at: float
) -> tuple[int, list[float]]:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    subscribed = 0

    async def one() -> None:
        async with connect(url, max_queue=None) as ws:
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "subscribe", "group": "prices", "symbols": ["BTC"]}))
            nonlocal subscribed
            subscribed += 1
            while time.time() < stop_at:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, stop_at - time.time()))
                except TimeoutError:
                    break
                now = time.time()
                if now < start_at or '"price_update"' not in raw:
                    continue
                updated = json.loads(raw)["data"].get("updated_at")
                if updated:
                    latencies.append((now - float(updated)) * 1000.0)

    async def staggered(i: int) -> None:
        await asyncio.sleep(i * 0.002)
        with contextlib.suppress(Exception):
            await one()

    await asyncio.gather(*(staggered(i) for i in range(count)))
    return subscribed, latencies


def _worker(url: str, count: int, start_at: float, stop_at: float, out: Any) -> None:
    out.put(asyncio.run(_clients(url, count, start_at, stop_at)))


async def _count_ticks(nats_url: str, seconds: float) -> int:
    import nats

    nc = await nats.connect(nats_url)
    seen = 0

    async def on_tick(msg: Any) -> None:
        nonlocal seen
        seen += 1

    await nc.subscribe("pricewire.v1.tick.>", cb=on_tick)
    await asyncio.sleep(seconds)
    await nc.close()
    return seen


def run(clients: int, seconds: float, venue_tick_s: float, processes: int) -> str:
    with tempfile.TemporaryDirectory(prefix="pricewire-bench-ingest-") as tmp:
        root = Path(tmp)
        started: list[Any] = []
        try:
            nats_server = NatsServer(root / "js").start()
            started.append(nats_server)
            venues_port = free_port()
            simulator = ServiceProcess(
                "pricewire_ingest.simulator",
                env={
                    "PRICEWIRE_SIM_VENUES_PORT": str(venues_port),
                    "PRICEWIRE_SIM_VENUE_TICK_S": str(venue_tick_s),
                    "PRICEWIRE_SIM_SEED": "7",
                    "PRICEWIRE_LOG_LEVEL": "WARNING",
                },
                log_file=root / "simulator.log",
            ).start(timeout_s=60)
            started.append(simulator)
            edge = ServiceProcess(
                "pricewire_edge",
                env={
                    "PRICEWIRE_NATS_URL": nats_server.url,
                    "PRICEWIRE_LOG_LEVEL": "WARNING",
                    # every bench client comes from 127.0.0.1
                    "PRICEWIRE_LIMITS__MAX_CONNECTIONS_PER_IP": str(clients + 100),
                },
                log_file=root / "edge.log",
            ).start(timeout_s=60)
            started.append(edge)
            ingest = ServiceProcess(
                "pricewire_ingest",
                env={
                    "PRICEWIRE_NATS_URL": nats_server.url,
                    "PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE": simulator.url(),
                    "PRICEWIRE_SIMULATED_KEYS": "true",
                    "PRICEWIRE_STREAM_ENABLED": "true",
                    "PRICEWIRE_STREAM_BASE_URL_OVERRIDE": f"ws://127.0.0.1:{venues_port}",
                    "PRICEWIRE_LOG_LEVEL": "WARNING",
                },
                log_file=root / "ingest.log",
            ).start(timeout_s=60)
            started.append(ingest)
            assert ingest.proc is not None
            time.sleep(5.0)  # streams subscribed, the consensus has its votes

            warmup = 3.0
            start_at = time.time() + warmup
            stop_at = start_at + seconds
            per = [
                clients // processes + (1 if i < clients % processes else 0)
                for i in range(processes)
            ]
            ctx = multiprocessing.get_context("spawn")
            out = ctx.Queue()
            workers = [
                ctx.Process(
                    target=_worker, args=(edge.url("/ws", scheme="ws"), n, start_at, stop_at, out)
                )
                for n in per
                if n
            ]
            for w in workers:
                w.start()
            time.sleep(max(0.0, start_at - time.time()))
            cpu_before = cpu_seconds(ingest.proc.pid)
            ticks = asyncio.run(_count_ticks(nats_server.url, seconds))
            cpu_used = cpu_seconds(ingest.proc.pid) - cpu_before
            latencies: list[float] = []
            connected = 0
            for _ in workers:
                count, got = out.get(timeout=seconds + 60)
                connected += count
                latencies.extend(got)
            for w in workers:
                w.join(timeout=10)
        finally:
            for proc in reversed(started):
                proc.stop()
    return summary(latencies, ticks=ticks, seconds=seconds, cpu_s=cpu_used, clients=connected)


def summary(
    latencies_ms: list[float], *, ticks: int, seconds: float, cpu_s: float, clients: int
) -> str:
    """The ingest line ``make bench`` prints.

    >>> summary([5.0] * 98 + [20.0, 90.0], ticks=7000, seconds=10, cpu_s=1.75, clients=1000)
    'ingest: tick-to-client p50 5.0 ms p99 89.3 ms at 700 ticks/s (1000 clients, 100 updates; market-ingest 250 us CPU per tick)'
    """
    rate = ticks / seconds
    if len(latencies_ms) < 2:
        return f"ingest: no price_update reached the clients ({rate:.0f} ticks/s)"
    cuts = statistics.quantiles(latencies_ms, n=100)
    per_tick_us = cpu_s / ticks * 1e6 if ticks else float("nan")
    return (
        f"ingest: tick-to-client p50 {cuts[49]:.1f} ms p99 {cuts[98]:.1f} ms at {rate:.0f} "
        f"ticks/s ({clients} clients, {len(latencies_ms)} updates; market-ingest "
        f"{per_tick_us:.0f} us CPU per tick)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument(
        "--venue-tick-s",
        type=float,
        default=0.1,
        help="each simulated venue ticks each pair this often",
    )
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    args = parser.parse_args(argv)
    print(run(args.clients, args.seconds, args.venue_tick_s, args.processes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
