"""Commands the orchestrator sends its agents, and their replies (one JSON object per line).

Times are wall-clock ``time.time()`` values: every process runs on the same machine, and the
publisher stamps each tick with the same clock the clients read on receipt.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Proto = Literal["pricewire", "nats"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- load agent ---------------------------------------------------------------------------
class Connect(Message):
    """Open ``n`` more clients to ``url`` and wait until each is subscribed (or gave up)."""

    cmd: Literal["connect"] = "connect"
    url: str
    proto: Proto
    n: int = Field(ge=0)
    subject: str = "pricewire.v1.price.*"
    #: clients in their handshake at once: a crowd arriving, not one 5,000-wide SYN burst
    concurrency: int = Field(default=256, ge=1)
    attempts: int = Field(default=4, ge=1)
    #: extra kernel-timestamped clients (bench.probe), spread through the connection order
    probes: int = Field(default=0, ge=0)
    timeout_s: float = Field(default=60.0, gt=0)
    #: lean clients (bench.lean: cheap set-up, deliveries counted per read), not picows ones
    lean: bool = False


class Measure(Message):
    """Count what arrives with a receive time in ``[t0, t1)``; reply just after ``t1``."""

    cmd: Literal["measure"] = "measure"
    t0: float
    t1: float
    #: latency is parsed for one client in ``latency_every`` (all when 1)
    latency_every: int = Field(default=1, ge=1)


class ArmRestart(Message):
    """From now on, a client whose connection closes reconnects to ``url`` after a jitter."""

    cmd: Literal["arm_restart"] = "arm_restart"
    url: str
    jitter_s: float = Field(ge=0)
    deadline_s: float = Field(gt=0)


class AwaitBack(Message):
    cmd: Literal["await_back"] = "await_back"
    timeout_s: float = Field(gt=0)


class CloseAll(Message):
    cmd: Literal["close_all"] = "close_all"
    timeout_s: float = Field(default=30.0, gt=0)


# -- publisher agent -------------------------------------------------------------------------
class Publish(Message):
    """Publish ``rate_hz`` price ticks per second from ``start_at`` to ``stop_at``."""

    cmd: Literal["publish"] = "publish"
    nats_url: str
    rate_hz: float = Field(gt=0)
    start_at: float
    stop_at: float
    symbols: int = Field(default=20, ge=1)
    root: str = "pricewire"


class Quit(Message):
    cmd: Literal["quit"] = "quit"


Command = Annotated[
    Connect | Measure | ArmRestart | AwaitBack | CloseAll | Publish | Quit,
    Field(discriminator="cmd"),
]
command_adapter: TypeAdapter[Command] = TypeAdapter(Command)


# -- replies ------------------------------------------------------------------------------
class Failed(Message):
    ok: Literal[False] = False
    error: str


class Done(Message):
    ok: Literal[True] = True


class Connected(Message):
    ok: Literal[True] = True
    requested: int
    ready: int
    failed: int
    #: from the command until the last of the new clients got its welcome / its subscribe ack
    welcome_s: float | None
    ready_s: float | None
    open: int
    probes: int = 0
    errors: dict[str, int] = Field(default_factory=dict)


class Latency(Message):
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


class Measured(Message):
    ok: Literal[True] = True
    seconds: float
    deliveries: int
    bytes: int
    open: int
    min_per_client: int
    max_per_client: int
    silent_clients: int
    #: as the load agent read it: includes its own sweep through every socket on one core
    latency: Latency | None
    #: publish to the kernel's receive timestamp on the probes' sockets
    wire: Latency | None
    #: CPU seconds the load agent itself used in the window (client-bound check)
    cpu_s: float


class Back(Message):
    ok: Literal[True] = True
    n: int
    closed: int
    back: int
    close_codes: dict[str, int]
    first_close_at: float | None
    last_close_at: float | None
    last_back_at: float | None
    #: the longest any one client was away (its close to its next subscribe ack)
    max_gap_s: float | None
    errors: dict[str, int] = Field(default_factory=dict)


class Published(Message):
    ok: Literal[True] = True
    published: int
    seconds: float
    #: how far behind schedule the publisher ever fell (a busy client core shows here)
    max_lag_ms: float
