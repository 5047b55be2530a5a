"""The launcher in-process, driving stand-in services (real processes, a real nats-server)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pricewire_common.testing import NatsServer, free_port
from pricewire_dev.console import Console
from pricewire_dev.exceptions import RunDirBusy
from pricewire_dev.launcher import Launcher, _RunDir, module_runnable
from pricewire_dev.plan import ServiceSpec
from pricewire_dev.settings import LauncherSettings

# A stand-in service: serves /ready, /health and /env on PRICEWIRE_PORT and stops on
# SIGTERM, or misbehaves as FAKE_MODE says for its instance ("edge-1=crash,...").
FAKE_SERVICE = """
import json, os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

instance = os.environ["PRICEWIRE_INSTANCE_ID"]
modes = dict(m.split("=") for m in os.environ.get("FAKE_MODE", "").split(",") if m)
mode = modes.get(instance, "ok")
if mode == "crash":
    print("boom", flush=True)
    sys.exit(3)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = 503 if mode == "never_ready" and self.path == "/ready" else 200
        env = {k: v for k, v in os.environ.items() if k.startswith("PRICEWIRE_")}
        body = json.dumps({"instance": instance, "path": self.path, "env": env}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PRICEWIRE_PORT"])), Handler)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    def on_term(*_):
        threading.Thread(target=server.shutdown).start()
    signal.signal(signal.SIGTERM, on_term)
if mode == "die_later":
    def die():
        time.sleep(1.5)
        print("dying now", flush=True)
        os._exit(2)
    threading.Thread(target=die, daemon=True).start()
print(f"fake {instance} listening", flush=True)
server.serve_forever()
print(f"fake {instance} stopped", flush=True)
"""

FAKES = (
    ServiceSpec("session-registry", "pw_fake_service", 2, "registry-1", "magenta"),
    ServiceSpec("ws-edge", "pw_fake_service", 1, "edge-1", "green"),
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


class Harness:
    def __init__(self, tmp_path: Path, modes: str = "", **settings: object) -> None:
        (tmp_path / "pw_fake_service.py").write_text(FAKE_SERVICE)
        self.out = io.StringIO()
        defaults: dict[str, object] = {
            "providers": "simulated",
            "port": 0,
            "ports_from": free_port(),
            "nats_port": free_port(),
            "nats_monitor_port": free_port(),
            "run_dir": tmp_path / ".run",
            "log_file": tmp_path / "logs" / "app.log",
            "ready_timeout_s": 60.0,
            "stop_timeout_s": 10.0,
        }
        environ = {
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "FAKE_MODE": modes,
            "PRICEWIRE_HEARTBEAT_INTERVAL_S": "7",
            "PRICEWIRE_PORT": "1",
        }
        self.launcher = Launcher(
            LauncherSettings(**{**defaults, **settings}),  # type: ignore[arg-type]
            console=Console(self.out, color=False),
            environ=environ,
            runnable=lambda _module: True,
            services=FAKES,
        )

    @property
    def output(self) -> str:
        return self.out.getvalue()

    def pids(self) -> list[int]:
        pids = [c.proc.pid for c in self.launcher.children]
        if self.launcher.nats is not None and self.launcher.nats.proc is not None:
            pids.append(self.launcher.nats.proc.pid)
        return pids


async def test_starts_routes_and_stops_everything_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    harness = Harness(tmp_path)
    run = asyncio.create_task(harness.launcher.run())
    await _until(lambda: "Pricewire is up" in harness.output or run.done())
    assert not run.done()
    assert harness.launcher.gateway is not None
    origin = f"http://127.0.0.1:{harness.launcher.gateway.port}"
    async with httpx.AsyncClient(base_url=origin, trust_env=False) as client:
        edge = (await client.get("/health")).json()
        registry = (await client.get("/api/sessions")).json()
    assert (edge["instance"], edge["path"]) == ("edge-1", "/health")
    assert (registry["instance"], registry["path"]) == ("registry-1", "/api/sessions")

    env = edge["env"]
    edge_plan = next(c.plan for c in harness.launcher.children if c.name == "ws-edge")
    assert env["PRICEWIRE_PORT"] == str(edge_plan.port)  # ports_from+1 unless that was taken
    assert env["PRICEWIRE_NATS_URL"] == harness.launcher.nats.url  # type: ignore[union-attr]
    assert env["PRICEWIRE_LOG_FILE"] == str(tmp_path / "logs" / "app.log")
    assert env["PRICEWIRE_DEV_MODE"] == "true"
    assert env["PRICEWIRE_HEARTBEAT_INTERVAL_S"] == "7"  # the user's own setting

    assert "ws-edge          | fake edge-1 listening" in harness.output
    assert "session-registry | fake registry-1 listening" in harness.output
    assert f"ws://localhost:{harness.launcher.gateway.port}/ws" in harness.output
    pids = harness.pids()
    assert len(pids) == 3

    harness.launcher.request_stop()
    assert await asyncio.wait_for(run, 60) == 0
    assert not any(_alive(pid) for pid in pids)
    assert "ws-edge          | fake edge-1 stopped" in harness.output
    order = [
        r.__dict__.get("service", "nats-server")
        for r in caplog.records
        if r.getMessage() in ("stopping", "stopping nats-server")
    ]
    assert order == ["ws-edge", "session-registry", "nats-server"]
    warned = [r for r in caplog.records if r.getMessage().startswith("set per process")]
    assert warned[0].__dict__["variables"] == "PRICEWIRE_PORT"


async def test_a_service_that_crashes_at_start_fails_the_launch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(tmp_path, "edge-1=crash")
    assert await asyncio.wait_for(harness.launcher.run(), 60) == 1
    assert "ws-edge          | boom" in harness.output
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["ws-edge exited with code 3 before it was ready"]
    assert "Pricewire is up" not in harness.output
    assert not any(_alive(pid) for pid in harness.pids())


async def test_a_service_that_dies_later_stops_everything_with_exit_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(tmp_path, "registry-1=die_later")
    assert await asyncio.wait_for(harness.launcher.run(), 60) == 1
    assert "session-registry | dying now" in harness.output
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["session-registry exited unexpectedly with code 2; stopping everything"]
    assert not any(_alive(pid) for pid in harness.pids())


async def test_a_service_that_is_never_ready_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(tmp_path, "registry-1=never_ready", ready_timeout_s=3.0)
    assert await asyncio.wait_for(harness.launcher.run(), 60) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "not ready after 3 s" in errors[0]
    assert errors[0].endswith("session-registry; their output above says why")
    assert not any(_alive(pid) for pid in harness.pids())


async def test_a_service_that_ignores_sigterm_is_killed_after_the_grace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(tmp_path, "edge-1=stubborn", stop_timeout_s=2.0)
    run = asyncio.create_task(harness.launcher.run())
    await _until(lambda: "Pricewire is up" in harness.output or run.done())
    pids = harness.pids()
    harness.launcher.request_stop()
    assert await asyncio.wait_for(run, 60) == 0
    killed = [r for r in caplog.records if r.getMessage() == "did not stop in time, killing"]
    assert [r.__dict__["service"] for r in killed] == ["ws-edge"]
    assert not any(_alive(pid) for pid in pids)


async def test_a_busy_gateway_port_fails_before_anything_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        harness = Harness(tmp_path, port=port)
        assert await asyncio.wait_for(harness.launcher.run(), 60) == 1
    finally:
        server.close()
        await server.wait_closed()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"port {port} on 127.0.0.1 is in use (another `make run`?); "
        "choose another with PORT=... or --port"
    ]
    assert harness.launcher.nats is None
    assert harness.launcher.children == []


def test_one_run_directory_serves_one_launcher(tmp_path: Path) -> None:
    first, second = _RunDir(tmp_path / ".run"), _RunDir(tmp_path / ".run")
    first.claim()
    try:
        with pytest.raises(RunDirBusy, match=f"another launcher \\(pid {os.getpid()}\\)"):
            second.claim()
    finally:
        first.release()
    second.claim()
    second.release()


@pytest.mark.parametrize(
    ("module", "runnable"),
    [
        ("pricewire_dev", True),  # a package with __main__.py
        ("pricewire_dev.launcher", True),  # a module inside a package
        ("pricewire_common", False),  # a package without __main__
        ("pricewire_dev.nothing_here", False),
        ("no_such_package_at_all", False),
    ],
)
def test_module_runnable_finds_what_python_dash_m_would_run(module: str, runnable: bool) -> None:
    assert module_runnable(module) is runnable


def test_a_nats_server_left_by_a_killed_launcher_is_stopped_before_a_new_one(
    tmp_path: Path,
) -> None:
    run_dir = _RunDir(tmp_path / ".run")
    run_dir.nats_dir.mkdir(parents=True)
    orphan = NatsServer(run_dir.nats_dir, server_name="pricewire-dev").start()
    assert orphan.proc is not None
    try:
        run_dir.nats_pid_file.write_text(f"{orphan.proc.pid}\n")
        run_dir.claim()
        run_dir.stop_stale_nats()
        # reaped by its parent (this test) once stopped; poll() reaps it
        assert orphan.proc.wait(30) is not None
    finally:
        orphan.stop()
        run_dir.release()


def test_a_pid_file_naming_some_other_process_is_left_alone(tmp_path: Path) -> None:
    run_dir = _RunDir(tmp_path / ".run")
    run_dir.nats_dir.mkdir(parents=True)
    run_dir.nats_pid_file.write_text(f"{os.getpid()}\n")
    run_dir.claim()
    try:
        run_dir.stop_stale_nats()  # this pytest process is no nats-server: untouched
    finally:
        run_dir.release()
    assert _alive(os.getpid())


async def test_one_ctrl_c_delivered_twice_drains_and_a_later_one_kills(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    harness = Harness(tmp_path, "edge-1=stubborn", stop_timeout_s=120.0)
    run = asyncio.create_task(harness.launcher.run())
    try:
        await _until(lambda: "Pricewire is up" in harness.output or run.done())
        assert not run.done()
        # as under `uv run`: the terminal's SIGINT and uv's forwarded copy, back to back
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        await _until(lambda: any(r.getMessage() == "stopping" for r in caplog.records))
        await asyncio.sleep(1.5)
        assert not run.done(), "the stubborn edge is still in its grace period"
        assert not harness.launcher._hurry.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(run, 60) == 0
    finally:
        if not run.done():  # a failed assertion must not leave processes behind
            harness.launcher._hurry.set()
            harness.launcher.request_stop()
            await asyncio.wait_for(run, 60)
    killed = [r for r in caplog.records if r.getMessage() == "killing on the second signal"]
    assert [r.__dict__["service"] for r in killed] == ["ws-edge"]
