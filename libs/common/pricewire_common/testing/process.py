"""The life cycle both test-support processes share: spawn with a log, stop, kill, reap."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

__all__ = ["ChildProcess"]


class ChildProcess:
    """A process started by a test, its output appended to ``log_file`` (or discarded)."""

    def __init__(self, *, log_file: Path | None = None) -> None:
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _spawn(self, args: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        if self.log_file is not None and self._log is None:
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in _reap()
        self.proc = subprocess.Popen(
            list(args),
            env=env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            # its own session: a Ctrl-C in the terminal reaches the caller, which stops the
            # child in order (the launcher stops nats-server last), not the child directly
            start_new_session=True,
        )

    def _exited(self) -> int | None:
        """The exit code if the process already ended, else ``None``."""
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                code = self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc is not None:
            code = self.proc.returncode
        self._reap()
        return code

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """SIGSTOP for the duration: alive, connected, and answering nothing (a hung server)."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("the process is not running")
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye to anyone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reap()

    def _reap(self) -> None:
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
