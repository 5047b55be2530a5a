"""``python -m pricewire_dev run``: the whole stack on one machine, stopped by one Ctrl-C.

Order of events: the dev gateway claims ``--port`` (so a busy port fails before anything
starts), a real nats-server with JetStream starts with its store under ``.run/nats``, then
every service whose package can run (``python -m <module>`` finds a ``__main__``) starts as
its own process. Their output is relayed line by line under a coloured name; the launcher
waits until each answers ``GET /ready`` with 200, then prints the URLs.

On SIGINT, SIGTERM or SIGHUP it sends SIGTERM to ws-edge first (its clients get the edge's
goodbye while NATS is still up), then to the other services, waits up to ``--stop-timeout``
(15 s) and SIGKILLs what is left, then stops nats-server, and exits 0. A second signal skips
the grace. If a child dies on its own the launcher says so, stops everything and exits 1.

Each service runs in its own process group, so the terminal's Ctrl-C reaches only the
launcher, which then stops the children in order; on Linux the children also get SIGTERM if
the launcher itself is killed (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import importlib.util
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from pricewire_common.testing import NatsServer, free_port

from .console import Console
from .exceptions import LauncherError, RunDirBusy, ServiceDied, ServiceNotReady
from .gateway import Gateway, UpstreamAddress
from .plan import (
    EDGE,
    LAUNCHER_OWNED,
    REGISTRY,
    SERVICES,
    SIMULATOR,
    SIMULATOR_VENUES,
    SIMULATOR_VENUES_OFFSET,
    ServicePlan,
    ServiceSpec,
    banner_lines,
    child_env,
    plan_services,
)
from .proxy_core import Upstream
from .settings import LauncherSettings

__all__ = ["Launcher", "module_runnable", "port_is_free"]

log = logging.getLogger(__name__)

_READY_POLL_S = 0.25
_OUTPUT_LINE_LIMIT = 1024 * 1024
_NATS_SERVER_NAME = "pricewire-dev"
_PR_SET_PDEATHSIG = 1
# Signals closer together than this are one Ctrl-C delivered twice (see on_signal).
_SAME_CTRL_C_S = 1.0
# SIGHUP: the terminal that ran `make run` was closed
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def module_runnable(module: str) -> bool:
    """Whether ``python -m module`` would run, found on disk without importing anything.

    Importing another service's package here would run its code in the launcher, and a
    half-written package of a colleague would take the launcher down with it.
    """
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.submodule_search_locations is None:
        return not rest and spec.origin is not None
    for location in spec.submodule_search_locations:
        base = Path(location, *rest)
        if rest and base.with_suffix(".py").is_file():
            return True
        if (base / "__main__.py").is_file():
            return True
    return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (SO_REUSEADDR, as servers bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return fn


# Looked up before any fork: the child only calls it.
_PRCTL = _prctl()


def _die_with_launcher() -> None:
    """Runs in the child between fork and exec: SIGTERM when the launcher dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # each child leads its own process group; anything it spawned goes too
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@dataclass(eq=False)
class _Child:
    plan: ServicePlan
    proc: asyncio.subprocess.Process
    exited: asyncio.Task[int]
    relay: asyncio.Task[None]
    ready: bool = False

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def running(self) -> bool:
        return self.proc.returncode is None


@dataclass
class _RunDir:
    """The launcher's claim on ``.run``: one launcher per checkout and run directory."""

    path: Path
    lock: IO[str] | None = field(default=None, repr=False)

    @property
    def nats_dir(self) -> Path:
        return self.path / "nats"

    @property
    def nats_pid_file(self) -> Path:
        return self.nats_dir / "nats-server.pid"

    def claim(self) -> None:
        self.nats_dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / "launcher.lock"
        lock = open(lock_path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "?"
            lock.close()
            raise RunDirBusy(
                f"another launcher (pid {owner}) is running from {self.path}; stop it first, "
                "or give this one its own --run-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self.lock = lock

    def release(self) -> None:
        if self.lock is not None:
            with contextlib.suppress(OSError):
                self.nats_pid_file.unlink(missing_ok=True)
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()
            self.lock = None

    def stop_stale_nats(self) -> None:
        """Stop a nats-server that a killed launcher left behind on this store.

        Only called with the lock held, so no live launcher owns it; two servers on one
        JetStream store would corrupt it.
        """
        try:
            pid = int(self.nats_pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"nats-server" not in cmdline or str(self.nats_dir).encode() not in cmdline:
            return
        log.warning("stopping a nats-server left over by an earlier launcher", extra={"pid": pid})
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _running(pid):
                time.sleep(0.1)
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def edge_handshake_timeout(environ: Mapping[str, str]) -> float:
    """The edge's ``PRICEWIRE_LIMITS__HANDSHAKE_TIMEOUT_S``: the gateway in front applies it too.

    An invalid value gives the default here; ws-edge itself refuses to start with it.
    """
    from pydantic import ValidationError

    from pricewire_edge.limits import LimitsSettings

    raw = environ.get("PRICEWIRE_LIMITS__HANDSHAKE_TIMEOUT_S")
    try:
        limits = LimitsSettings.model_validate({"handshake_timeout_s": raw} if raw else {})
    except ValidationError:
        limits = LimitsSettings()
    return limits.handshake_timeout_s


class Launcher:
    """Start, watch and stop the dev stack; :meth:`run` returns the exit code."""

    def __init__(
        self,
        settings: LauncherSettings,
        *,
        console: Console | None = None,
        environ: Mapping[str, str] | None = None,
        runnable: Callable[[str], bool] = module_runnable,
        services: tuple[ServiceSpec, ...] = SERVICES,
    ) -> None:
        self.settings = settings
        self.services = services
        self.console = console or Console()
        self.environ = dict(os.environ if environ is None else environ)
        self.runnable = runnable
        self.run_dir = _RunDir(settings.run_dir.resolve())
        self.log_file = settings.log_file.resolve()
        self.gateway: Gateway | None = None
        self.nats: NatsServer | None = None
        self._nats_start: asyncio.Task[NatsServer] | None = None
        self.children: list[_Child] = []
        self.missing: list[ServiceSpec] = []
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """What SIGTERM does: stop everything, exit 0."""
        self._stop.set()

    async def run(self) -> int:
        self._install_signal_handlers()
        main = asyncio.create_task(self._start_and_watch())
        stop = asyncio.create_task(self._stop.wait())
        code = 0
        try:
            await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
            if main.done():
                exc = main.exception()
                if isinstance(exc, LauncherError):
                    log.error(str(exc))
                    code = 1
                elif exc is not None:
                    log.error("launcher failed", exc_info=exc)
                    code = 1
            else:
                log.info("stopping on signal")
        finally:
            self._stopping = True
            for task in (main, stop):
                task.cancel()
            await asyncio.gather(main, stop, return_exceptions=True)
            await self._shutdown()
            self._remove_signal_handlers()
        log.info("stopped", extra={"exit_code": code})
        return code

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        first_at: list[float] = []

        def on_signal(sig: signal.Signals) -> None:
            now = loop.time()
            if not first_at:
                first_at.append(now)
                self._stop.set()
            elif now - first_at[0] < _SAME_CTRL_C_S:
                # Under `uv run` one Ctrl-C arrives twice: from the terminal to the whole
                # foreground process group, and forwarded by uv. Only a later one hurries.
                log.debug("repeated signal ignored", extra={"signal": sig.name})
            elif not self._hurry.is_set():
                log.warning("second signal: killing what is left now", extra={"signal": sig.name})
                self._hurry.set()

        for sig in _SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)

    async def _start_and_watch(self) -> None:
        settings = self.settings
        ports = self._service_ports()
        self.gateway = Gateway(
            {
                Upstream.EDGE: UpstreamAddress("127.0.0.1", ports[EDGE]),
                Upstream.REGISTRY: UpstreamAddress("127.0.0.1", ports[REGISTRY]),
            },
            host=settings.host,
            port=settings.port,
            handshake_timeout_s=edge_handshake_timeout(self.environ),
        )
        await self.gateway.start()  # first: a busy --port fails before anything starts
        self.run_dir.claim()
        self.run_dir.stop_stale_nats()
        nats = await self._start_nats()

        plans, self.missing = plan_services(
            providers=settings.providers,
            ports=ports,
            nats_url=nats.url,
            log_file=str(self.log_file),
            runnable=self.runnable,
            services=self.services,
        )
        if self.missing:
            log.warning(
                "not started: their package has no __main__ yet; running what exists",
                extra={"missing": ", ".join(f"{s.name} ({s.module})" for s in self.missing)},
            )
        ignored = sorted(k for k in LAUNCHER_OWNED if k in self.environ)
        if ignored:
            log.warning(
                "set per process by the launcher; your value is ignored",
                extra={"variables": ", ".join(ignored)},
            )
        for plan in plans:
            self.children.append(await self._spawn(plan))

        await self._wait_ready()
        self.console.banner(
            banner_lines(
                port=self.gateway.port,
                providers=settings.providers,
                services=plans,
                missing=self.missing,
                nats_port=nats.port,
                nats_monitor_port=nats.monitor_port,
                log_file=self._display_path(self.log_file),
            )
        )
        await self._watch()

    # -- starting ---------------------------------------------------------------------------

    def _service_ports(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        for spec in self.services:
            wanted = self.settings.ports_from + spec.port_offset
            if port_is_free(wanted):
                ports[spec.name] = wanted
            else:
                ports[spec.name] = free_port()
                log.warning(
                    "port in use, taking a free one",
                    extra={"service": spec.name, "wanted": wanted, "port": ports[spec.name]},
                )
        if any(spec.name == SIMULATOR for spec in self.services):
            wanted = self.settings.ports_from + SIMULATOR_VENUES_OFFSET
            ports[SIMULATOR_VENUES] = wanted if port_is_free(wanted) else free_port()
        return ports

    async def _start_nats(self) -> NatsServer:
        settings = self.settings
        port = settings.nats_port if port_is_free(settings.nats_port) else free_port()
        monitor = (
            settings.nats_monitor_port if port_is_free(settings.nats_monitor_port) else free_port()
        )
        if (port, monitor) != (settings.nats_port, settings.nats_monitor_port):
            log.warning(
                "NATS ports in use, taking free ones",
                extra={"nats_port": port, "monitor_port": monitor},
            )
        log_path = self.run_dir.nats_dir / "nats-server.log"
        self.nats = NatsServer(
            self.run_dir.nats_dir,
            port=port,
            monitor_port=monitor,
            server_name=_NATS_SERVER_NAME,
            log_file=log_path,
        )
        # NatsServer.start blocks while it polls /healthz; a thread keeps the gateway serving
        self._nats_start = asyncio.create_task(asyncio.to_thread(self.nats.start))
        try:
            nats = await asyncio.shield(self._nats_start)
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise LauncherError(
                f"nats-server did not start: {exc} (its log: {self._display_path(log_path)})"
            ) from exc
        assert nats.proc is not None
        self.run_dir.nats_pid_file.write_text(f"{nats.proc.pid}\n")
        log.info(
            "nats-server ready",
            extra={
                "url": nats.url,
                "monitor": f"http://127.0.0.1:{nats.monitor_port}/",
                "store": self._display_path(self.run_dir.nats_dir),
                "log": self._display_path(log_path),
            },
        )
        return nats

    async def _spawn(self, plan: ServicePlan) -> _Child:
        env = child_env(self.environ, plan.env)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            plan.spec.module,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            limit=_OUTPUT_LINE_LIMIT,
            process_group=0,
            preexec_fn=_die_with_launcher if _PRCTL is not None else None,
        )
        log.info(
            "started",
            extra={"service": plan.name, "pid": proc.pid, "port": plan.port},
        )
        assert proc.stdout is not None
        return _Child(
            plan=plan,
            proc=proc,
            exited=asyncio.create_task(proc.wait()),
            relay=asyncio.create_task(self._relay(plan.spec, proc.stdout)),
        )

    async def _relay(self, spec: ServiceSpec, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # longer than the limit: asyncio dropped it
                self.console.line(spec.name, spec.color, "[a line too long to show was dropped]")
                continue
            if not line:
                return
            self.console.line(spec.name, spec.color, line.decode(errors="replace").rstrip())

    async def _wait_ready(self) -> None:
        if not self.children:
            return
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            waits = {asyncio.create_task(self._until_ready(http, c)): c for c in self.children}
            try:
                done, pending = await asyncio.wait(
                    waits,
                    timeout=self.settings.ready_timeout_s,
                    return_when=asyncio.FIRST_EXCEPTION,
                )
                for task in done:
                    task.result()  # a ServiceDied surfaces here
                if pending:
                    names = ", ".join(waits[t].name for t in pending)
                    raise ServiceNotReady(
                        f"not ready after {self.settings.ready_timeout_s:.0f} s (GET /ready did "
                        f"not answer 200): {names}; their output above says why"
                    )
            finally:
                for task in waits:
                    task.cancel()
                await asyncio.gather(*waits, return_exceptions=True)

    async def _until_ready(self, http: httpx.AsyncClient, child: _Child) -> None:
        base = f"http://127.0.0.1:{child.plan.port}"
        while True:
            if child.exited.done():
                await self._drain_output(child)
                raise ServiceDied(
                    f"{child.name} exited with code {child.proc.returncode} before it was ready"
                )
            with contextlib.suppress(httpx.HTTPError):
                response = await http.get(f"{base}/ready")
                if response.status_code == 404:
                    # a helper without a readiness probe (the simulator) is ready when alive
                    response = await http.get(f"{base}/health")
                if response.status_code == 200:
                    child.ready = True
                    log.info("ready", extra={"service": child.name})
                    return
            await asyncio.wait({child.exited}, timeout=_READY_POLL_S)

    async def _watch(self) -> None:
        """Return never; raise ServiceDied when a child or nats-server exits on its own."""
        assert self.nats is not None
        nats_proc = self.nats.proc
        children = {c.exited: c for c in self.children}
        while True:
            done, _ = await asyncio.wait(set(children), timeout=1.0)
            for task in done:
                child = children[task]
                await self._drain_output(child)
                raise ServiceDied(
                    f"{child.name} exited unexpectedly with code {child.proc.returncode}; "
                    "stopping everything"
                )
            if nats_proc is None or nats_proc.poll() is not None:
                code = None if nats_proc is None else nats_proc.returncode
                raise ServiceDied(
                    f"nats-server exited unexpectedly with code {code}; stopping everything "
                    f"(its log: {self._display_path(self.run_dir.nats_dir / 'nats-server.log')})"
                )

    @staticmethod
    async def _drain_output(child: _Child) -> None:
        # the child's last lines (a traceback) belong before the launcher's verdict
        await asyncio.wait({child.relay}, timeout=2.0)

    # -- stopping ---------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self.gateway is not None:
            self.gateway.stop_accepting()
        await self._stop_children()
        if self.gateway is not None:
            await self.gateway.close()
        await self._stop_nats()
        relays = [c.relay for c in self.children]
        if relays:
            await asyncio.wait(relays, timeout=2.0)
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, *(c.exited for c in self.children), return_exceptions=True)
        self.run_dir.release()

    async def _stop_children(self) -> None:
        """SIGTERM to ws-edge first, then the rest; one grace period for all, then SIGKILL.

        One shared grace rather than one per service keeps Ctrl-C under ~15 s. ws-edge
        drains while NATS is still up (nats-server stops after every service), and whatever
        it publishes while others stop waits in JetStream for their next start.
        """
        deadline = asyncio.get_running_loop().time() + self.settings.stop_timeout_s
        order = sorted(self.children, key=lambda c: c.name != EDGE)
        running = [c for c in order if c.running]
        for child in running:
            log.info("stopping", extra={"service": child.name, "pid": child.proc.pid})
            _signal_group(child.proc.pid, signal.SIGTERM)
        await self._wait_exit(running, deadline)
        leftovers = [c for c in self.children if c.running]
        for child in leftovers:
            if self._hurry.is_set():
                log.warning("killing on the second signal", extra={"service": child.name})
            else:
                log.warning(
                    "did not stop in time, killing",
                    extra={"service": child.name, "grace_s": self.settings.stop_timeout_s},
                )
            _signal_group(child.proc.pid, signal.SIGKILL)
        if leftovers:
            await asyncio.wait([c.exited for c in leftovers])

    async def _wait_exit(self, children: list[_Child], deadline: float) -> None:
        if not children:
            return
        hurry = asyncio.create_task(self._hurry.wait())
        try:
            waiting: set[asyncio.Future[Any]] = {c.exited for c in children}
            while waiting and not self._hurry.is_set():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return
                done, _ = await asyncio.wait(
                    {*waiting, hurry}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                waiting -= done
        finally:
            hurry.cancel()
            await asyncio.gather(hurry, return_exceptions=True)

    async def _stop_nats(self) -> None:
        if self._nats_start is not None and not self._nats_start.done():
            # stopping while it starts would leave a server the thread is about to spawn
            await asyncio.gather(self._nats_start, return_exceptions=True)
        if self.nats is not None:
            log.info("stopping nats-server")
            await asyncio.to_thread(self.nats.stop)

    @staticmethod
    def _display_path(path: Path) -> str:
        with contextlib.suppress(ValueError):
            return str(path.relative_to(Path.cwd()))
        return str(path)
