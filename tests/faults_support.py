"""Helpers of the fault tests (``test_faults.py``): services as processes, WebSocket clients that
remember when and how they were closed, /ready watchers and the nats-server monitoring API.

Everything waits by polling for its condition with a generous deadline; times are
``time.monotonic()`` so that the tests can measure gaps (reconnects, drain spread) and report them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from pricewire_common.testing import NatsServer, ServiceProcess, free_port

log = logging.getLogger("pricewire.tests.faults")


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], *, within: float = 60.0, what: str = "condition"
) -> float:
    """Poll ``check`` (a function or a coroutine function) until it holds; returns how long
    that took."""
    started = time.monotonic()

    async def holds() -> bool:
        result = check()
        return await result if inspect.isawaitable(result) else result

    while not await holds():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what} not reached within {within}s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


class Stack:
    """Services started as processes (logs in ``logs``); ``stop_all`` stops what still runs."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, ServiceProcess] = {}

    def add(self, module: str, name: str, env: dict[str, str]) -> ServiceProcess:
        proc = ServiceProcess(
            module,
            env={"PRICEWIRE_INSTANCE_ID": name, **env},
            log_file=self.logs / f"{name}.log",
        )
        self.procs[name] = proc
        return proc

    async def start(self, *procs: ServiceProcess, timeout_s: float = 90.0) -> None:
        """Start the processes at once and wait until each answers /ready."""
        await asyncio.gather(*(asyncio.to_thread(p.start, timeout_s=timeout_s) for p in procs))

    async def sigterm(self, proc: ServiceProcess, *, timeout_s: float = 30.0) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds to exit). -1 if it had to be killed."""
        started = time.monotonic()
        code = await asyncio.to_thread(proc.stop, timeout_s)
        return (-1 if code is None else code), time.monotonic() - started

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop(30)


class Client:
    """A WebSocket client (the ``websockets`` library) that keeps what it receives, with times."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.closed_at: float | None = None
        self.session_id = ""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, name: str) -> Client:
        ws = await connect(url, open_timeout=30, max_size=None)
        client = cls(ws, name)
        client.session_id = (await client.next_of("welcome"))["session_id"]
        return client

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                self.received.append((time.monotonic(), json.loads(raw)))
        self.closed_at = time.monotonic()

    @property
    def close_code(self) -> int | None:
        """The code the server closed with (None while open)."""
        return None if self.closed_at is None else self.ws.close_code

    def of(self, kind: str, *, since: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.received if m.get("type") == kind and t >= since]

    async def next_of(
        self, kind: str, *, since: float = 0.0, within: float = 30.0
    ) -> dict[str, Any]:
        async def arrived() -> bool:
            return bool(self.of(kind, since=since))

        await eventually(arrived, within=within, what=f"{self.name}: a {kind!r} message")
        return self.of(kind, since=since)[0][1]

    async def at_least(self, n: int, kind: str, *, since: float, within: float = 30.0) -> None:
        await eventually(
            lambda: len(self.of(kind, since=since)) >= n,
            within=within,
            what=f"{self.name}: {n} {kind!r} messages",
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def subscribe(self, group: str) -> None:
        since = time.monotonic()
        await self.send({"type": "subscribe", "group": group})
        await self.next_of("subscribed", since=since)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class ReadyWatch:
    """Polls a service's /ready every ``every_s`` and keeps (time, status); None: no answer."""

    def __init__(self, proc: ServiceProcess, *, every_s: float = 0.2) -> None:
        self.proc = proc
        self.every_s = every_s
        self.seen: list[tuple[float, int | None]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> ReadyWatch:
        self._task = asyncio.create_task(self._poll())
        return self

    async def _poll(self) -> None:
        async with httpx.AsyncClient(timeout=1.0) as http:
            while True:
                try:
                    status: int | None = (await http.get(self.proc.url("/ready"))).status_code
                except httpx.HTTPError:
                    status = None
                self.seen.append((time.monotonic(), status))
                await asyncio.sleep(self.every_s)

    def statuses(self, start: float, end: float = float("inf")) -> list[int | None]:
        return [s for t, s in self.seen if start <= t <= end]

    def first(self, status: int | None, *, since: float) -> float | None:
        return next((t for t, s in self.seen if t >= since and s == status), None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def get_json(url: str) -> tuple[int, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.get(url)
    return reply.status_code, reply.json()


async def metric(proc: ServiceProcess, name: str, **labels: str) -> float:
    """One sample of a service's /metrics (0 when absent)."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(proc.url("/metrics"))).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def connection_names(nats: NatsServer) -> set[str]:
    """Names of the clients connected to one node (its monitoring endpoint /connz)."""
    url = f"http://127.0.0.1:{nats.monitor_port}/connz?limit=1024"
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            body = json.loads(reply.read())
    except OSError:
        return set()
    return {c.get("name", "") for c in body.get("connections") or []}


def cluster(root: Path, size: int = 3) -> list[NatsServer]:
    """``size`` nodes of one cluster, each routed to all the others (not started)."""
    cluster_ports = [free_port() for _ in range(size)]
    return [
        NatsServer(
            root / f"node{i}",
            cluster_name="pw-faults",
            cluster_port=port,
            routes=[f"nats-route://127.0.0.1:{p}" for p in cluster_ports if p != port],
            server_name=f"node{i}",
            log_file=root / f"node{i}.log",
        )
        for i, port in enumerate(cluster_ports)
    ]


async def start_cluster(nodes: list[NatsServer]) -> None:
    # all at once: a clustered JetStream is healthy only once the nodes have met
    await asyncio.gather(*(asyncio.to_thread(n.start, timeout_s=60) for n in nodes))
