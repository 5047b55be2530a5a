"""CPU cost of polling: ``uv run python services/market-ingest/bench_polling.py [--polls 3000]``.

Starts the provider simulator as a separate process (its CPU is not counted), then runs the real
ingest engine in this process (httpx, adapters, consensus, health and message encoding; the
publisher discards messages, so NATS I/O is left out) until ``--polls`` polls are done, and prints
the process CPU seconds per 1000 polls. A second pass polls each category on its own to show
where the cost is, and the figure is scaled to the catalog's live poll rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pricewire_common.testing import ServiceProcess
from pricewire_ingest.adapters import ADAPTERS
from pricewire_ingest.catalog import load_catalog
from pricewire_ingest.engine import IngestEngine
from pricewire_ingest.poller import HttpFetcher
from pricewire_ingest.service import collect_keys
from pricewire_ingest.settings import IngestSettings

T = TypeVar("T")


class NullPublisher:
    def __init__(self) -> None:
        self.count = 0

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.count += 1


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_engine(
    base_url: str, concurrency: int, scale: float
) -> tuple[IngestEngine, HttpFetcher, NullPublisher]:
    catalog = load_catalog(families=ADAPTERS)
    settings = IngestSettings(
        provider_base_url_override=base_url,
        simulated_keys=True,
        poll_interval_scale=scale,
        initial_spread_s=1.0,
        poll_concurrency=concurrency,
        request_timeout_s=10.0,
        log_level="WARNING",
    )
    fetcher = HttpFetcher(max_connections=concurrency)
    publisher = NullPublisher()
    keys = collect_keys(catalog, {}, simulated=True)
    return (
        IngestEngine(settings, catalog, fetcher=fetcher, publisher=publisher, keys=keys),
        fetcher,
        publisher,
    )


async def run_loop(base_url: str, polls: int, scale: float) -> tuple[int, float, float, int]:
    """The full engine (scheduler, buckets, loops) until ``polls`` polls are done."""
    engine, fetcher, publisher = make_engine(base_url, 32, scale)
    stop = asyncio.Event()
    wall0, cpu0 = time.perf_counter(), cpu_s()
    task = asyncio.create_task(engine.run(stop))
    while sum(s.polls for s in engine.states.values()) < polls:  # noqa: ASYNC110 - a plain poll of a counter
        await asyncio.sleep(0.05)
    stop.set()
    await task
    done = sum(s.polls for s in engine.states.values())
    wall, cpu = time.perf_counter() - wall0, cpu_s() - cpu0
    await fetcher.aclose()
    return done, wall, cpu, publisher.count


async def by_category(base_url: str, rounds: int) -> dict[str, tuple[int, float]]:
    """Each provider polled ``rounds`` times in turn, CPU summed per category."""
    engine, fetcher, _ = make_engine(base_url, 1, 1.0)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for _ in range(rounds):
        for state in engine.polled:
            before = cpu_s()
            await engine.poll(state.provider.id)
            totals[state.provider.category][0] += 1
            totals[state.provider.category][1] += cpu_s() - before
    await fetcher.aclose()
    return {k: (int(v[0]), v[1]) for k, v in sorted(totals.items())}


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """On uvloop, as the service runs (pricewire_common.runtime)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro_fn())
    return uvloop.run(coro_fn())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=2000, help="polls in the run-loop pass")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the per-category pass")
    parser.add_argument("--scale", type=float, default=0.01, help="poll interval scale (speed-up)")
    args = parser.parse_args()
    catalog = load_catalog()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "pricewire-bench-simulator.log"
    sim = ServiceProcess(
        "pricewire_ingest.simulator",
        env={"PRICEWIRE_SIM_SEED": "1", "PRICEWIRE_LOG_LEVEL": "WARNING"},
        log_file=log,
    ).start()
    try:
        base = sim.url()
        done, wall, cpu, messages = run(lambda: run_loop(base, args.polls, args.scale))
        per_1000 = cpu / done * 1000
        print(
            f"market-ingest polling benchmark (simulator {base}, {len(catalog.providers)} providers, uvloop)"
        )
        print(
            f"run loop : {done} polls in {wall:.1f} s wall, {cpu:.2f} CPU s "
            f"-> {per_1000:.2f} CPU s per 1000 polls ({done / wall:.0f} polls/s, {messages} messages encoded)"
        )
        categories = run(lambda: by_category(base, args.rounds))
        parts = [f"{name} {c / n * 1000:.2f}" for name, (n, c) in categories.items()]
        print("per category (sequential, CPU s per 1000 polls): " + ", ".join(parts))
        live_rate = sum(1.0 / p.poll_interval_s for p in catalog.providers if not p.inactive)
        print(
            f"live catalog: {live_rate:.2f} polls/s with every key set -> about "
            f"{live_rate * per_1000 / 1000 * 100:.2f} % of one core"
        )
    finally:
        sim.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
