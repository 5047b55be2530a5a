"""Run a Pricewire service as a real process, as end-to-end tests and benchmarks need.

>>> edge = ServiceProcess("pricewire_edge", env={"PRICEWIRE_NATS_URL": nats.url}).start()
>>> edge.url("/ws", scheme="ws")
'ws://127.0.0.1:40123/ws'
>>> edge.stop()      # SIGTERM, graceful; edge.kill() is kill -9
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from .nats_server import free_port

__all__ = ["ServiceProcess"]


class ServiceProcess:
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
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def url(self, path: str = "", *, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def start(self, *, wait_ready: bool = True, timeout_s: float = 30.0) -> ServiceProcess:
        if self.log_file is not None and self._log is None:
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in _reap()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
        )
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
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode}")
            if self.status("/ready") == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} not ready within {timeout_s}s")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc is not None:
            code = self.proc.returncode
        self._reap()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reap()

    def _reap(self) -> None:
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
