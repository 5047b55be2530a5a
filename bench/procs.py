"""Child processes of the bench: start pinned to a core, talk to them, read /proc, stop them.

Every child gets ``PR_SET_PDEATHSIG`` (SIGTERM), so even a SIGKILLed orchestrator leaves
nothing behind; the orchestrator's own ``finally`` stops them in the normal and Ctrl-C cases.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import select
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from pydantic import BaseModel

from bench.protocol import Failed

log = logging.getLogger("bench.procs")

M = TypeVar("M", bound=BaseModel)

_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class AgentError(RuntimeError):
    """An agent answered ``Failed``, died or did not answer in time."""


def cores() -> tuple[set[int], set[int]]:
    """(server core, client cores): the issue's layout on a 2-core machine.

    With one core there is nothing to pin: everything shares it (and the figures say less).
    """
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return set(available), set(available)
    return {available[0]}, set(available[1:])


@contextlib.contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """Run the block with this process pinned to ``cpus``: children started inside inherit it."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _child_setup() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# -- /proc ----------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, every thread included."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_kib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def core_times(cpus: set[int]) -> tuple[float, float]:
    """(busy, total) jiffies of these cores, from /proc/stat."""
    busy = total = 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *rest = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = [float(v) for v in rest[:8]]
        idle = values[3] + values[4]
        total += sum(values)
        busy += sum(values) - idle
    return busy, total


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def wait_until(what: str, check: object, timeout_s: float, *, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with {proc.popen.returncode} (log: {proc.log_path})"
            )
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready in {timeout_s:g} s")


def sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


# -- processes --------------------------------------------------------------------------------
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    _buf: bytes = field(default=b"", repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    # JSON lines, for the agents
    def send(self, command: BaseModel) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command.model_dump_json().encode() + b"\n")
        self.popen.stdin.flush()

    def readline(self, timeout_s: float) -> bytes:
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError(
                    f"{self.name}: no answer in {timeout_s:g} s (log: {self.log_path})"
                )
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise AgentError(
                        f"{self.name} exited ({self.popen.poll()}); log: {self.log_path}"
                    )
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def recv(self, kind: type[M], timeout_s: float) -> M:
        line = self.readline(timeout_s)
        data = json.loads(line)
        if data.get("ok") is False:
            raise AgentError(f"{self.name}: {Failed.model_validate(data).error}")
        return kind.model_validate(data)

    def call(self, command: BaseModel, kind: type[M], timeout_s: float) -> M:
        self.send(command)
        return self.recv(kind, timeout_s)


class Supervisor:
    """Starts children and guarantees they are stopped."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        #: every process started in the run, for the record (and the smoke test's check)
        self.started: list[tuple[str, int]] = []

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpus: set[int],
        env: Mapping[str, str] | None = None,
        pipes: bool = False,
    ) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        with pinned(cpus):
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log_file,
                stderr=log_file,
                env={**os.environ, **(env or {})},
                preexec_fn=_child_setup,  # noqa: PLW1509 - the orchestrator is single-threaded
            )
        proc = Proc(name, popen, log_path, log_file)
        self.procs.append(proc)
        self.started.append((name, popen.pid))
        return proc

    def stop(self, proc: Proc, *, timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        """Signal, wait, then SIGKILL; the exit code (``None`` if it had to be killed)."""
        code: int | None
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(sig)
            try:
                code = proc.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killed", proc.name, timeout_s)
                proc.popen.kill()
                proc.popen.wait()
                code = None
        else:
            code = proc.popen.returncode
        for stream in (proc.popen.stdin, proc.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        proc.log_file.close()
        if proc in self.procs:
            self.procs.remove(proc)
        return code

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc, timeout_s=10.0)
