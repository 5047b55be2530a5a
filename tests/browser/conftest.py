"""Browser tests: Playwright (Python) driving Debian's Chromium against real Pricewire processes.

``edge_stack`` is nats-server + ws-edge as processes, fed by the scripted upstream
(``upstream.py``) on NATS, plus the stats service when its package can run: the test controls
every piece, so it can stop and restart the edge on the same port. ``full_stack`` is
``python -m pricewire_dev run --providers simulated`` on free ports: the product as a user starts it.

Chromium: ``/usr/bin/chromium`` (``apt-get install -y chromium``), or ``PRICEWIRE_CHROMIUM``.
Without it the tests skip, unless ``PRICEWIRE_REQUIRE_BROWSER=1`` (set by ``make test``), which
turns the skip into a failure. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import random
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from pricewire_common.testing import NatsServer, ServiceProcess, free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _load_upstream() -> Any:
    # Loaded by path: with --import-mode=importlib this folder is not on sys.path.
    spec = importlib.util.spec_from_file_location(
        "pricewire_browser_upstream", Path(__file__).with_name("upstream.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


upstream_module = _load_upstream()
ScriptedUpstream = upstream_module.ScriptedUpstream


def chromium_path() -> str | None:
    path = os.environ.get("PRICEWIRE_CHROMIUM", "/usr/bin/chromium")
    return path if Path(path).exists() else None


def runnable(module: str) -> bool:
    """True if ``python -m module`` can run (the package exists and has a ``__main__``)."""
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ModuleNotFoundError:
        return False


def shot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


# ---------------------------------------------------------------------------- browser


@dataclass
class PageLog:
    """What a page said on its console and which errors it threw."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return self.console_errors + self.page_errors + self.failed_requests


def watch(page: Any) -> PageLog:
    log = PageLog()
    page.on(
        "console",
        lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda err: log.page_errors.append(str(err)))
    page.on(
        "response",
        lambda r: log.failed_requests.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return log


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    executable = chromium_path()
    if executable is None:
        message = "Chromium not found: apt-get install -y chromium (or set PRICEWIRE_CHROMIUM)"
        if os.environ.get("PRICEWIRE_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


# ---------------------------------------------------------------------------- edge stack


class EdgeStack:
    """nats-server, ws-edge (restartable on its port), the stats service if it can run, and
    the scripted upstream publishing while the test runs."""

    def __init__(self, tmp: Path, *, stats_interval_s: float = 1.0) -> None:
        self.tmp = tmp
        self.nats = NatsServer(tmp / "js", log_file=tmp / "nats.log")
        self.edge_port = free_port()
        self.stats_interval_s = stats_interval_s
        self.edge: ServiceProcess | None = None
        self.stats: ServiceProcess | None = None
        self.upstream: Any = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}"

    def _env(self) -> dict[str, str]:
        return {
            "PRICEWIRE_NATS_URL": self.nats.url,
            "PRICEWIRE_REPORT_INTERVAL_S": "1",
            "PRICEWIRE_STATS_INTERVAL_S": str(self.stats_interval_s),
            "PRICEWIRE_PROVIDER_STATS_INTERVAL_S": str(self.stats_interval_s),
            "PRICEWIRE_DRAIN_WINDOW_S": "0.5",
            "PRICEWIRE_SESSION_COMMIT_S": "0.5",
            "PRICEWIRE_LOG_LEVEL": "INFO",
        }

    def start_edge(self) -> None:
        self.edge = ServiceProcess(
            "pricewire_edge",
            port=self.edge_port,
            env=self._env(),
            log_file=self.tmp / "edge.log",
        ).start(timeout_s=60)

    def stop_edge(self) -> None:
        if self.edge is not None:
            self.edge.stop()
            self.edge = None

    async def start(self) -> None:
        await asyncio.to_thread(self.nats.start)
        if runnable("pricewire_stats"):
            self.stats = ServiceProcess(
                "pricewire_stats", env=self._env(), log_file=self.tmp / "stats.log"
            )
            await asyncio.to_thread(self.stats.start, timeout_s=60)
        await asyncio.to_thread(self.start_edge)
        self.upstream = ScriptedUpstream(self.nats.url, provider_stats=self.stats is None)
        await self.upstream.connect()
        self._pump = asyncio.create_task(self.upstream.run(0.5))

    async def stop(self) -> None:
        # Every step is bounded: a NATS drain that never finishes once hung this teardown
        # for the whole 120 s test timeout.
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._pump, 10)
        if self.upstream is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.upstream.close(), 10)
        await asyncio.to_thread(self.stop_edge)
        if self.stats is not None:
            await asyncio.to_thread(self.stats.stop)
        await asyncio.to_thread(self.nats.stop)


@pytest_asyncio.fixture
async def edge_stack(tmp_path: Path) -> AsyncIterator[EdgeStack]:
    stack = EdgeStack(tmp_path)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()


# ---------------------------------------------------------------------------- full stack


def _free_block(size: int) -> int:
    """A base port N with N+1 .. N+size all free (the launcher's --ports-from).

    Taken below the kernel's ephemeral range, where other tests' free ports (bound to port 0)
    cannot land between this check and the launcher's bind.
    """
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    top = max(low, 12000) - size - 1
    for _ in range(200):
        base = random.randint(10000, top)
        ok = True
        for port in range(base + 1, base + size + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free block of ports")


class FullStack:
    """``python -m pricewire_dev run --providers simulated`` on free ports, stopped with SIGINT."""

    def __init__(self, tmp: Path, *, stats_interval_s: float = 1.0) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.ports_from = _free_block(5)
        self.nats_port = free_port()
        self.nats_monitor_port = free_port()
        self.stats_interval_s = stats_interval_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / "launcher.out"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 150.0) -> None:
        env = {
            **os.environ,
            "PRICEWIRE_STATS_INTERVAL_S": str(self.stats_interval_s),
            "PRICEWIRE_PROVIDER_STATS_INTERVAL_S": str(self.stats_interval_s),
            "PRICEWIRE_REPORT_INTERVAL_S": "1",
            "PRICEWIRE_LOG_FORMAT": "json",
        }
        cmd = [
            sys.executable,
            "-m",
            "pricewire_dev",
            "run",
            "--providers",
            "simulated",
            "--port",
            str(self.port),
            "--ports-from",
            str(self.ports_from),
            "--nats-port",
            str(self.nats_port),
            "--nats-monitor-port",
            str(self.nats_monitor_port),
            "--run-dir",
            str(self.tmp / "run"),
            "--log-file",
            str(self.tmp / "app.log"),
            "--ready-timeout",
            str(timeout_s),
        ]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"launcher exited: {self.log_path.read_text()[-4000:]}")
            if _status(f"{self.base_url}/ready") == 200 and "Ctrl-C" in self.log_path.read_text(
                errors="replace"
            ):
                return
            time.sleep(0.3)
        raise TimeoutError(f"stack not ready: {self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            # The launcher's process group: its children go with it.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


@pytest.fixture
def full_stack(tmp_path: Path) -> Iterator[FullStack]:
    if not runnable("pricewire_dev"):
        pytest.skip("the dev launcher (pricewire_dev) is not there yet")
    stack = FullStack(tmp_path)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def kit() -> types.SimpleNamespace:
    """The helpers above for the test modules (which cannot import this conftest by name)."""
    return types.SimpleNamespace(watch=watch, shot_path=shot_path, runnable=runnable)
