"""Run a Pricewire service as a real process, as end-to-end tests and benchmarks need.

>>> edge = ServiceProcess("pricewire_edge", env={"PRICEWIRE_NATS_URL": nats.url}).start()
>>> edge.url("/ws", scheme="ws")
'ws://127.0.0.1:40123/ws'
>>> edge.stop()      # SIGTERM, graceful; edge.kill() is kill -9
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .nats_server import free_port
from .process import ChildProcess

__all__ = ["ServiceProcess"]


class ServiceProcess(ChildProcess):
    def __init__(
        self,
        module: str,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.module = module
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "PRICEWIRE_HOST": "127.0.0.1",
            "PRICEWIRE_PORT": str(self.port),
            "PRICEWIRE_LOG_FORMAT": "json",
            **(env or {}),
        }
        super().__init__(log_file=log_file)

    def url(self, path: str = "", *, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def start(self, *, wait_ready: bool = True, timeout_s: float = 30.0) -> ServiceProcess:
        self._spawn([sys.executable, "-m", self.module], env=self.env)
        if wait_ready:
            self.wait_ready(timeout_s)
        return self

    def status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.url(path), timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            return None

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (code := self._exited()) is not None:
                raise RuntimeError(f"{self.module} exited with {code}")
            if self.status("/ready") == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} not ready within {timeout_s}s")

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
