"""The orchestrator behind ``make bench``: ``uv run python -m bench [--quick]``.

For each target (the edge, the naive FastAPI manager, nats-server's WebSocket listener) it
starts the server pinned to one core, drives the load agent and the publisher (on the other
core) through each scenario, reads the server's CPU time and RSS from ``/proc``, and prints
the table, the targets and, last, the issue's one-line summary. Results and every process's
log land in ``bench/results/<time>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.agent import raise_nofile_limit
from bench.procs import (
    AgentError,
    Proc,
    Supervisor,
    core_times,
    cores,
    cpu_seconds,
    http_ok,
    pinned,
    rss_kib,
    sleep_until,
    wait_until,
)
from bench.protocol import (
    ArmRestart,
    AwaitBack,
    Back,
    CloseAll,
    Connect,
    Connected,
    Done,
    Measure,
    Measured,
    Proto,
    Publish,
    Published,
    Quit,
)
from bench.report import Row, profile_summary, ratios, summary_line, table, verdicts
from pricewire_common.testing import NatsServer, free_port

log = logging.getLogger("bench")

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("edge", "naive", "nats-ws")
SCENARIOS = ("fanout", "latency", "idle", "restart")
PRICES_SUBJECT = "pricewire.v1.price.*"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How big each scenario is. ``--quick`` shrinks everything to a few seconds."""

    fanout_clients: int = 1_000
    #: above what nats-server's listener and the naive manager deliver at 1,000 clients on
    #: 2 vCPUs (~680k and ~60k deliveries/s): they run saturated; a target that keeps up is
    #: reported as such ("not saturated, a lower bound")
    fanout_rate_hz: float = 1_000.0
    fanout_latency_every: int = 10
    latency_clients: int = 2_000
    latency_rate_hz: float = 10.0  # x 2,000 clients = the 20k deliveries/s
    warmup_s: float = 2.0
    window_s: float = 8.0
    idle_clients: int = 5_000
    capacity_clients: int = 10_000
    capacity_rate_hz: float = 4.0
    restart_clients: int = 5_000
    restart_jitter_s: float = 1.0
    drain_window_s: float = 5.0
    connect_concurrency: int = 256
    #: kernel-timestamped probe clients in each rate scenario (see bench.probe)
    probes: int = 40
    idle_settle_s: float = 2.0


QUICK = Plan(
    fanout_clients=40,
    fanout_rate_hz=50.0,
    fanout_latency_every=1,
    latency_clients=60,
    warmup_s=0.5,
    window_s=1.5,
    idle_clients=150,
    capacity_clients=300,
    capacity_rate_hz=4.0,
    restart_clients=60,
    restart_jitter_s=0.3,
    drain_window_s=1.0,
    idle_settle_s=0.5,
    probes=6,
)


class Target:
    """A server under test, started pinned to the server core."""

    name = ""
    proto: Proto = "pricewire"

    @property
    def pid(self) -> int:
        raise NotImplementedError

    @property
    def ws_url(self) -> str:
        raise NotImplementedError

    @property
    def nats_url(self) -> str:
        """Where the publisher publishes for this target."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> int | None:
        raise NotImplementedError


class ProcessTarget(Target):
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.port = 0
        self.proc: Proc | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def nats_url(self) -> str:
        return self.bench.broker.url

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def start(self) -> None:
        self.port = free_port()
        self.proc = self.bench.sup.spawn(
            f"{self.name}-{self.port}", self.argv(), cpus=self.bench.server_cpus, env=self.env()
        )
        url = f"http://127.0.0.1:{self.port}/ready"
        wait_until(f"{self.name} /ready", lambda: http_ok(url), 60.0, proc=self.proc)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = self.bench.sup.stop(self.proc, timeout_s=self.bench.plan.drain_window_s + 20)
        self.proc = None
        return code


class EdgeTarget(ProcessTarget):
    name = "edge"

    def argv(self) -> list[str]:
        if self.bench.edge_loop == "asyncio":
            # the uvloop ablation: runtime.run falls back to asyncio when uvloop cannot import
            code = (
                "import sys, runpy; sys.modules['uvloop'] = None; "
                "runpy.run_module('pricewire_edge', run_name='__main__')"
            )
            return [sys.executable, "-c", code]
        return [sys.executable, "-m", "pricewire_edge"]

    def env(self) -> dict[str, str]:
        return {
            "PRICEWIRE_HOST": "127.0.0.1",
            "PRICEWIRE_PORT": str(self.port),
            "PRICEWIRE_NATS_URL": self.bench.broker.url,
            "PRICEWIRE_LOG_LEVEL": "WARNING",
            "PRICEWIRE_LOG_FORMAT": "json",
            "PRICEWIRE_DRAIN_WINDOW_S": f"{self.bench.plan.drain_window_s:g}",
            # every bench client comes from 127.0.0.1: the per-address cap would stop at 100
            # (it may not exceed max_connections, whose default, 10,000, the bench keeps)
            "PRICEWIRE_LIMITS__MAX_CONNECTIONS_PER_IP": "10000",
            **self.bench.edge_src_env(),
            **self.bench.edge_env,
        }


class NaiveTarget(ProcessTarget):
    name = "naive"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.naive",
            "--port",
            str(self.port),
            "--nats-url",
            self.bench.broker.url,
            "--subject",
            PRICES_SUBJECT,
        ]


class NatsWsTarget(Target):
    """Reference 2: nats-server's own WebSocket listener, clients speak the NATS protocol."""

    name = "nats-ws"
    proto: Proto = "nats"

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.server: NatsServer | None = None

    @property
    def pid(self) -> int:
        assert self.server is not None
        assert self.server.proc is not None
        return self.server.proc.pid

    @property
    def ws_url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.websocket_port}"

    @property
    def nats_url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> None:
        store = Path(tempfile.mkdtemp(prefix="nats-ws-", dir=self.bench.tmp))
        self.server = NatsServer(
            store, websocket_port=free_port(), log_file=self.bench.run_dir / "nats-ws.log"
        )
        # started from a pinned orchestrator: Go sizes GOMAXPROCS from the inherited mask
        with pinned(self.bench.server_cpus):
            self.server.start()
        self.bench.sup.started.append(("nats-ws", self.pid))

    def stop(self) -> int | None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        return 0


class Bench:
    def __init__(
        self,
        plan: Plan,
        run_dir: Path,
        tmp: Path,
        *,
        edge_env: dict[str, str] | None = None,
        edge_commit: str | None = None,
        edge_loop: str = "uvloop",
        profile: bool = False,
    ) -> None:
        self.plan = plan
        self.edge_env = edge_env or {}
        self.edge_commit = edge_commit
        self.edge_src: Path | None = None
        self.edge_loop = edge_loop
        self.profiler = profiler_argv() if profile else None
        self.run_dir = run_dir
        self.tmp = tmp
        self.sup = Supervisor(run_dir)
        self.server_cpus, self.client_cpus = cores()
        self.broker = NatsServer(tmp / "broker", log_file=run_dir / "broker.log")
        self.load: Proc | None = None
        self.pub: Proc | None = None
        self.rows: list[Row] = []

    # -- set-up and tear-down ---------------------------------------------------------------
    def edge_src_env(self) -> dict[str, str]:
        """PYTHONPATH to an older edge (and the libs of its commit), ahead of the workspace."""
        if self.edge_commit is None:
            return {}
        if self.edge_src is None:
            self.edge_src = export_commit(self.edge_commit, self.tmp / "edge-src")
        src = self.edge_src
        paths = [src / "services" / "ws-edge", src / "libs" / "common", src / "libs" / "contracts"]
        return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}

    def start(self) -> None:
        with pinned(self.client_cpus):
            self.broker.start()
        assert self.broker.proc is not None
        self.sup.started.append(("broker", self.broker.proc.pid))
        self._agents()

    def _agents(self) -> None:
        for name in ("load", "pub"):
            old = getattr(self, name)
            if old is not None:
                self.sup.stop(old, timeout_s=5)
            module = "bench.load" if name == "load" else "bench.publisher"
            proc = self.sup.spawn(
                name, [sys.executable, "-m", module], cpus=self.client_cpus, pipes=True
            )
            proc.recv(Done, 60)
            setattr(self, name, proc)

    def close(self) -> None:
        for proc in (self.load, self.pub):
            if proc is not None and proc.alive():
                with contextlib.suppress(AgentError, OSError):
                    proc.call(Quit(), Done, 5)
        self.sup.stop_all()
        self.broker.stop()

    @property
    def loader(self) -> Proc:
        assert self.load is not None
        return self.load

    @property
    def publisher(self) -> Proc:
        assert self.pub is not None
        return self.pub

    def target(self, name: str) -> Target:
        return {"edge": EdgeTarget, "naive": NaiveTarget, "nats-ws": NatsWsTarget}[name](self)

    # -- building blocks ------------------------------------------------------------------------
    def connect(
        self,
        target: Target,
        n: int,
        *,
        probes: int = 0,
        lean: bool = False,
        timeout_s: float = 180.0,
    ) -> Connected:
        return self.loader.call(
            Connect(
                url=target.ws_url,
                proto=target.proto,
                n=n,
                subject=PRICES_SUBJECT,
                concurrency=self.plan.connect_concurrency,
                timeout_s=timeout_s,
                probes=probes,
                lean=lean,
            ),
            Connected,
            timeout_s + 30,
        )

    def close_clients(self) -> None:
        self.loader.call(CloseAll(), Done, 60)

    def measure(
        self, target: Target, *, rate_hz: float, warmup_s: float, window_s: float, every: int
    ) -> tuple[Measured, Published, dict[str, float]]:
        """Publish at ``rate_hz`` and measure one window on both sides of the wire."""
        start_at = time.time() + 0.3
        t0 = start_at + warmup_s
        t1 = t0 + window_s
        self.publisher.send(
            Publish(nats_url=target.nats_url, rate_hz=rate_hz, start_at=start_at, stop_at=t1 + 0.2)
        )
        self.loader.send(Measure(t0=t0, t1=t1, latency_every=every))
        sleep_until(t0)
        cpu0, core0 = cpu_seconds(target.pid), core_times(self.server_cpus)
        sleep_until(t1)
        cpu1, core1 = cpu_seconds(target.pid), core_times(self.server_cpus)
        measured = self.loader.recv(Measured, window_s + 60)
        published = self.publisher.recv(Published, 60)
        busy = core1[0] - core0[0]
        total = core1[1] - core0[1]
        server = {
            "cpu_s": cpu1 - cpu0,
            "core_busy_pct": 100 * busy / total if total else 0.0,
        }
        return measured, published, server

    def start_profile(self, target: Target, label: str) -> Proc | None:
        if self.profiler is None or target.name != "edge":
            return None
        out = self.run_dir / f"profile-{label}.txt"
        argv = [*self.profiler, "record", "-p", str(target.pid), "-r", "200", "--nonblocking"]
        proc = self.sup.spawn(
            f"py-spy-{label}",
            [*argv, "--format", "raw", "-o", str(out)],
            cpus=self.client_cpus,
        )
        time.sleep(1.0)  # attached before the work starts
        return proc

    def stop_profile(self, spy: Proc | None, label: str) -> None:
        if spy is None:
            return
        self.sup.stop(spy, sig=signal.SIGINT, timeout_s=30)
        raw = self.run_dir / f"profile-{label}.txt"
        if raw.exists():
            summary = profile_summary(raw.read_text().splitlines())
            (self.run_dir / f"profile-{label}-top.txt").write_text(summary)
            log.info("    profile of the edge (%s):\n%s", label, summary[:2500])

    # -- scenarios ----------------------------------------------------------------------------
    def scenario_rate(self, name: str, scenario: str) -> list[Row]:
        """``fanout`` (saturated, 1,000 clients) or ``latency`` (20k deliveries/s, 2,000)."""
        plan = self.plan
        fan = scenario == "fanout"
        clients = plan.fanout_clients if fan else plan.latency_clients
        rate = plan.fanout_rate_hz if fan else plan.latency_rate_hz
        target = self.target(name)
        notes: list[str] = []
        target.start()
        try:
            c = self.connect(target, clients, probes=plan.probes, lean=True)
            if c.failed:
                notes.append(f"{c.failed} failed to connect {c.errors}")
            spy = self.start_profile(target, scenario)
            m, p, s = self.measure(
                target,
                rate_hz=rate,
                warmup_s=plan.warmup_s,
                window_s=plan.window_s,
                every=plan.fanout_latency_every if fan else 1,
            )
            self.stop_profile(spy, scenario)
            self.close_clients()
        finally:
            target.stop()
        offered = p.published / p.seconds * c.ready if p.seconds else 0.0
        per_s = m.deliveries / m.seconds
        client_pct = 100 * m.cpu_s / m.seconds
        if fan and per_s >= 0.95 * offered:
            notes.append("kept up with the offered load: not saturated, a lower bound")
        if client_pct >= 90:
            notes.append("client core near full: may be client-bound")
        if s["core_busy_pct"] - 100 * s["cpu_s"] / m.seconds > 15:
            notes.append(f"server core {s['core_busy_pct']:.0f}% busy: other load on it")
        if m.silent_clients:
            notes.append(f"{m.silent_clients} clients got nothing")
        if p.max_lag_ms > 100:
            notes.append(f"publisher fell {p.max_lag_ms:.0f} ms behind")
        expected = p.published / p.seconds * m.seconds if p.seconds else 0
        notes.append(
            f"per client {m.min_per_client}..{m.max_per_client} of ~{expected:.0f} published"
        )
        if m.deliveries:
            notes.append(f"{m.bytes / m.deliveries:.0f} B/msg")
        if c.probes < plan.probes:
            notes.append(f"only {c.probes} of {plan.probes} probes")
        lat = m.wire
        app = m.latency
        return [
            Row(
                scenario="fanout" if fan else "latency",
                target=name,
                clients=c.ready,
                offered_per_s=offered,
                deliveries_per_s=per_s,
                p50_ms=lat.p50_ms if lat else None,
                p99_ms=lat.p99_ms if lat else None,
                max_ms=lat.max_ms if lat else None,
                latency_samples=lat.count if lat else 0,
                app_p50_ms=app.p50_ms if app else None,
                app_p99_ms=app.p99_ms if app else None,
                cpu_us_per_delivery=s["cpu_s"] / m.deliveries * 1e6 if m.deliveries else None,
                server_cpu_pct=100 * s["cpu_s"] / m.seconds,
                core_busy_pct=s["core_busy_pct"],
                client_cpu_pct=client_pct,
                silent_clients=m.silent_clients,
                setup_s=c.welcome_s,
                note="; ".join(notes),
            )
        ]

    def scenario_idle(self, name: str) -> list[Row]:
        """Memory per idle connection and set-up time; on the edge, then 10,000 at once."""
        plan = self.plan
        target = self.target(name)
        rows: list[Row] = []
        target.start()
        try:
            time.sleep(plan.idle_settle_s)
            warm = self.connect(target, 20)  # first connections pay one-off allocations
            time.sleep(plan.idle_settle_s)
            rss0 = rss_kib(target.pid)
            spy = self.start_profile(target, "connect")
            cpu0 = cpu_seconds(target.pid)
            # lean clients (bench.lean): picows clients' core, not the server's, set the pace
            c = self.connect(target, plan.idle_clients, lean=True)
            cpu1 = cpu_seconds(target.pid)
            self.stop_profile(spy, "connect")
            time.sleep(plan.idle_settle_s)
            rss1 = rss_kib(target.pid)
            notes = [f"RSS {rss0 / 1024:.0f} -> {rss1 / 1024:.0f} MiB"]
            # the server's own CPU per client set up (contention does not inflate it much)
            setup_cpu_us = (cpu1 - cpu0) / c.ready * 1e6 if c.ready else None
            if setup_cpu_us is not None:
                notes.append(f"set-up CPU {setup_cpu_us:.0f} us/client")
            if c.failed:
                notes.append(f"{c.failed} failed {c.errors}")
            if c.ready_s is not None:
                notes.append(f"all subscribed in {c.ready_s:.2f} s")
            rows.append(
                Row(
                    scenario="idle",
                    target=name,
                    clients=plan.idle_clients,
                    connected=c.ready,
                    setup_s=c.welcome_s,
                    subscribed_s=c.ready_s,
                    setup_cpu_us=setup_cpu_us,
                    kib_per_conn=(rss1 - rss0) / c.ready if c.ready else None,
                    rss_mib=rss1 / 1024,
                    note="; ".join(notes),
                )
            )
            if name == "edge":
                more = plan.capacity_clients - c.open
                c2 = self.connect(target, more)
                time.sleep(plan.idle_settle_s)
                rss2 = rss_kib(target.pid)
                m, _, s = self.measure(
                    target,
                    rate_hz=plan.capacity_rate_hz,
                    warmup_s=0.5,
                    window_s=max(2.0, plan.window_s / 4),
                    every=max(1, c2.open // 500),
                )
                added = c2.open - warm.ready
                notes = [f"RSS {rss2 / 1024:.0f} MiB", f"+{more:,} in {c2.welcome_s or 0:.2f} s"]
                if c2.failed:
                    notes.append(f"{c2.failed} failed {c2.errors}")
                rows.append(
                    Row(
                        scenario="capacity",
                        target=name,
                        clients=plan.capacity_clients,
                        connected=m.open,
                        silent_clients=m.silent_clients,
                        deliveries_per_s=m.deliveries / m.seconds,
                        p50_ms=m.latency.p50_ms if m.latency else None,
                        p99_ms=m.latency.p99_ms if m.latency else None,
                        max_ms=m.latency.max_ms if m.latency else None,
                        cpu_us_per_delivery=s["cpu_s"] / m.deliveries * 1e6
                        if m.deliveries
                        else None,
                        server_cpu_pct=100 * s["cpu_s"] / m.seconds,
                        kib_per_conn=(rss2 - rss0) / added if added > 0 else None,
                        rss_mib=rss2 / 1024,
                        note="; ".join(notes),
                    )
                )
            self.close_clients()
        finally:
            target.stop()
        return rows

    def scenario_restart(self) -> list[Row]:
        """SIGTERM one edge with clients on it while a second one is up (a rolling deploy).

        Clients reconnect to the new edge with jitter; the figure is the time from SIGTERM
        until the last one is subscribed again, against the edge's drain window.
        """
        plan = self.plan
        old, new = EdgeTarget(self), EdgeTarget(self)
        old.start()
        try:
            c = self.connect(old, plan.restart_clients)
            new.start()
            self.loader.call(
                ArmRestart(
                    url=new.ws_url,
                    jitter_s=plan.restart_jitter_s,
                    deadline_s=plan.drain_window_s + 60,
                ),
                Done,
                10,
            )
            assert old.proc is not None
            popen = old.proc.popen
            exited: dict[str, float] = {}

            def watch() -> None:
                popen.wait()
                exited["at"] = time.time()

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            t_term = time.time()
            popen.send_signal(signal.SIGTERM)
            back = self.loader.call(
                AwaitBack(timeout_s=plan.drain_window_s + 45), Back, plan.drain_window_s + 75
            )
            watcher.join(plan.drain_window_s + 20)
            self.close_clients()
        finally:
            old.stop()
            new.stop()
        return [self._restart_row(c, back, t_term, exited.get("at"), popen.returncode)]

    def _restart_row(
        self, c: Connected, back: Back, t_term: float, exit_at: float | None, code: int | None
    ) -> Row:
        plan = self.plan
        drained = back.close_codes.get("1012", 0)
        back_s = back.last_back_at - t_term if back.last_back_at else None
        notes = [f"close codes {back.close_codes}"]
        if back.first_close_at and back.last_close_at:
            notes.append(
                f"closes from +{back.first_close_at - t_term:.2f} to +{back.last_close_at - t_term:.2f} s"
            )
        if exit_at is not None:
            notes.append(f"old edge exited {code} at +{exit_at - t_term:.2f} s")
        if back.max_gap_s is not None:
            notes.append(f"longest time away {back.max_gap_s:.2f} s")
        if back.errors:
            notes.append(f"retries {back.errors}")
        status: Any = "ok"
        if not drained:
            status = "n/a"
            notes.insert(0, "no 1012 drain on SIGTERM")
        elif back.back < back.n:
            notes.insert(0, f"{back.n - back.back} never came back")
        return Row(
            scenario="restart",
            target="edge",
            clients=c.ready,
            status=status,
            back=back.back,
            back_s=back_s,
            drain_window_s=plan.drain_window_s,
            jitter_s=plan.restart_jitter_s,
            close_codes=back.close_codes,
            note="; ".join(notes),
        )

    def clients(self, scenario: str) -> int:
        plan = self.plan
        return {
            "fanout": plan.fanout_clients,
            "latency": plan.latency_clients,
            "idle": plan.idle_clients,
            "restart": plan.restart_clients,
        }.get(scenario, 0)

    def run(self, targets: list[str], scenarios: list[str]) -> list[Row]:
        steps: list[tuple[str, str]] = []
        for scenario in scenarios:
            if scenario == "restart":
                if "edge" in targets:
                    steps.append(("restart", "edge"))
            else:
                steps += [(scenario, t) for t in targets]
        for i, (scenario, name) in enumerate(steps, 1):
            log.info("[%d/%d] %s on %s", i, len(steps), scenario, name)
            if name == "edge" and not edge_available():
                self.rows.append(
                    na_row(
                        scenario, name, self.clients(scenario), "pricewire_edge has no __main__ yet"
                    )
                )
                continue
            started = time.monotonic()
            try:
                if scenario in ("fanout", "latency"):
                    rows = self.scenario_rate(name, scenario)
                elif scenario == "idle":
                    rows = self.scenario_idle(name)
                else:
                    rows = self.scenario_restart()
            except (AgentError, TimeoutError, RuntimeError, OSError) as exc:
                log.error("%s on %s failed: %s", scenario, name, exc)
                rows = [na_row(scenario, name, self.clients(scenario), str(exc), status="failed")]
                self._agents()  # a fresh load agent: the old one's state is unknown
            for row in rows:
                log.info("    %s", row.model_dump(exclude_none=True, exclude_defaults=True))
            log.info("    (%.1f s)", time.monotonic() - started)
            self.rows += rows
        return self.rows


def na_row(scenario: str, target: str, clients: int, note: str, *, status: Any = "n/a") -> Row:
    kind: Any = "fanout" if scenario not in ("latency", "idle", "restart") else scenario
    return Row(scenario=kind, target=target, clients=clients, status=status, note=note)


def profiler_argv() -> list[str] | None:
    """py-spy from PATH, else through uvx (fetched from PyPI once); None if neither exists."""
    if found := shutil.which("py-spy"):
        return [found]
    if uvx := shutil.which("uvx"):
        return [uvx, "py-spy"]
    log.warning("--profile: neither py-spy nor uvx found; no profile")
    return None


def export_commit(rev: str, dest: Path) -> Path:
    """The edge and libs of one commit, read straight from git (the checkout is not touched)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "services/ws-edge", "libs"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=60)
    return dest


def edge_available() -> bool:
    try:
        return importlib.util.find_spec("pricewire_edge.__main__") is not None
    except ImportError:
        return False


def machine() -> str:
    model = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nats = "nats-server ?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        from pricewire_common.testing import find_nats_server

        nats = subprocess.run(
            [find_nats_server(), "--version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    return (
        f"{model}, {os.cpu_count()} cpus, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {nats}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N, a few seconds each")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument("--fanout-clients", type=int)
    parser.add_argument("--fanout-rate", type=float, help="ticks/s offered in the fan-out test")
    parser.add_argument("--window", type=float, help="seconds measured per rate scenario")
    parser.add_argument("--results", type=Path, help="folder for results.json and logs")
    parser.add_argument(
        "--edge-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the edge (repeatable), e.g. PRICEWIRE_LIMITS__MAX_CONNECTIONS=20000",
    )
    parser.add_argument("--edge-commit", metavar="REV", help="measure the edge of this commit")
    parser.add_argument(
        "--edge-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="asyncio: run the edge without uvloop (what uvloop buys)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the edge in each scenario (top functions)"
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=0,
        metavar="NICE",
        help="run every bench process at this nice value (e.g. -10 on a shared machine; needs root)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose or not args.quick else logging.WARNING,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
    )
    plan = QUICK if args.quick else Plan()
    overrides: dict[str, Any] = {}
    if args.fanout_clients:
        overrides["fanout_clients"] = args.fanout_clients
    if args.fanout_rate:
        overrides["fanout_rate_hz"] = args.fanout_rate
    if args.window:
        overrides["window_s"] = args.window
    plan = replace(plan, **overrides)
    targets = [t for t in args.targets.split(",") if t]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(targets) - set(TARGETS) | set(scenarios) - set(SCENARIOS)
    if unknown:
        log.error("unknown target or scenario: %s", ", ".join(sorted(unknown)))
        return 2

    raise_nofile_limit()
    priority = "default priority"
    if args.priority:
        # children inherit it; Linux nice is per thread, so set it before anything starts
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.priority)
            priority = f"nice {args.priority}"
        except OSError as exc:
            log.warning("could not set nice %d: %s", args.priority, exc)
    edge_env = dict(item.split("=", 1) for item in args.edge_env)
    run_dir = args.results or REPO / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pricewire-bench-") as tmp:
        bench = Bench(
            plan,
            run_dir,
            Path(tmp),
            edge_env=edge_env,
            edge_commit=args.edge_commit,
            edge_loop=args.edge_loop,
            profile=args.profile,
        )
        os.sched_setaffinity(0, bench.client_cpus)
        try:
            bench.start()
            rows = bench.run(targets, scenarios)
        except KeyboardInterrupt:
            log.error("interrupted: stopping every process")
            return 130
        finally:
            bench.close()
            (run_dir / "processes.json").write_text(json.dumps(bench.sup.started))
    (run_dir / "results.json").write_text(
        "[\n" + ",\n".join(r.model_dump_json() for r in rows) + "\n]\n"
    )
    out = sys.stdout
    server, client = sorted(bench.server_cpus), sorted(bench.client_cpus)
    out.write(f"\nmachine: {machine()}\n")
    out.write(
        f"edge: {'commit ' + args.edge_commit if args.edge_commit else 'working tree'}, "
        f"{args.edge_loop}{', ' + ', '.join(args.edge_env) if args.edge_env else ''}\n"
    )
    out.write(
        f"server pinned to cpu {server}, clients/publisher/broker on {client}, {priority}; "
        f"{time.monotonic() - started:.0f} s; logs and results.json in {run_dir}\n\n"
    )
    out.write(table(rows) + "\n\ntargets:\n")
    for v in verdicts(rows):
        mark = {True: "met ", False: "MISS", None: "n/a "}[v.met]
        out.write(f"  [{mark}] {v.target}: {v.detail}\n")
    out.write("\n")
    for line in ratios(rows):
        out.write(line + "\n")
    out.write(summary_line(rows) + "\n")
    out.flush()
    return 1 if any(r.status == "failed" for r in rows) else 0
