"""The pure part of the bench: result rows, percentiles, targets, the table, the closing line.

No process, socket or clock in here, so it is unit-tested with plain values.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scenario = Literal["fanout", "latency", "idle", "capacity", "restart"]
Status = Literal["ok", "n/a", "failed"]

SCENARIO_TITLES: dict[str, str] = {
    "fanout": "fan-out, saturated",
    "latency": "latency, fixed rate",
    "idle": "idle connections",
    "capacity": "concurrent conns",
    "restart": "restart + drain",
}

#: the issue's targets
RATIO_TARGET = 5.0
P99_TARGET_MS = 25.0
KIB_TARGET = 16.0
CAPACITY_TARGET = 10_000
SETUP_TARGET_S = 10.0


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
    >>> percentile([1.0, 2.0, 3.0, 4.0], 99)
    4.0
    """
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Row(BaseModel):
    """One scenario measured on one target. Fields a scenario does not measure stay ``None``."""

    model_config = ConfigDict(extra="forbid")

    scenario: Scenario
    target: str
    clients: int
    status: Status = "ok"
    note: str = ""
    offered_per_s: float | None = None
    deliveries_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    latency_samples: int | None = None
    #: the same, as the load agent's own clients read it (their sweep on one core included)
    app_p50_ms: float | None = None
    app_p99_ms: float | None = None
    cpu_us_per_delivery: float | None = None
    server_cpu_pct: float | None = None
    core_busy_pct: float | None = None
    client_cpu_pct: float | None = None
    silent_clients: int | None = None
    connected: int | None = None
    setup_s: float | None = None
    #: idle: until the last client was subscribed, and the server's CPU per client meanwhile
    subscribed_s: float | None = None
    setup_cpu_us: float | None = None
    kib_per_conn: float | None = None
    rss_mib: float | None = None
    back: int | None = None
    back_s: float | None = None
    drain_window_s: float | None = None
    jitter_s: float | None = None
    close_codes: dict[str, int] = Field(default_factory=dict)


class Verdict(BaseModel):
    target: str
    met: bool | None  # None: could not be measured
    detail: str


def cpu_per_delivery_us(server_cpu_s: float, deliveries: int) -> float | None:
    """Server CPU microseconds per delivered frame.

    >>> cpu_per_delivery_us(2.0, 100_000)
    20.0
    """
    if deliveries <= 0:
        return None
    return server_cpu_s / deliveries * 1e6


def kib_per_connection(rss_before_kib: float, rss_after_kib: float, added: int) -> float | None:
    """Resident memory each added connection cost.

    >>> kib_per_connection(50_000, 120_000, 5_000)
    14.0
    """
    if added <= 0:
        return None
    return (rss_after_kib - rss_before_kib) / added


def find(rows: Iterable[Row], scenario: Scenario, target: str) -> Row | None:
    for row in rows:
        if row.scenario == scenario and row.target == target and row.status == "ok":
            return row
    return None


def clients_of(rows: Iterable[Row], scenario: Scenario) -> int:
    """The planned size of a scenario, even when it failed or was not measured."""
    return max((row.clients for row in rows if row.scenario == scenario), default=0)


def val(row: Row | None, name: str) -> float | None:
    """One figure of a row that may be missing."""
    if row is None:
        return None
    value = getattr(row, name)
    return None if value is None else float(value)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def verdicts(rows: Sequence[Row]) -> list[Verdict]:
    """Where the edge stands against each target of the issue."""
    out: list[Verdict] = []
    e_fan, n_fan = find(rows, "fanout", "edge"), find(rows, "fanout", "naive")
    r = ratio(val(e_fan, "deliveries_per_s"), val(n_fan, "deliveries_per_s"))
    clients = clients_of(rows, "fanout")
    out.append(
        Verdict(
            target=f"deliveries/s >= {RATIO_TARGET:g}x naive at {clients:,} clients",
            met=None if r is None else r >= RATIO_TARGET,
            detail=f"{_fmt(r, 2)}x",
        )
    )
    c = ratio(
        val(n_fan, "cpu_us_per_delivery"),
        val(e_fan, "cpu_us_per_delivery"),
    )
    out.append(
        Verdict(
            target=f"cpu/delivery <= 1/{RATIO_TARGET:g} of naive",
            met=None if c is None else c >= RATIO_TARGET,
            detail=(
                f"{_fmt(val(e_fan, 'cpu_us_per_delivery'), 2)} us vs "
                f"{_fmt(val(n_fan, 'cpu_us_per_delivery'), 2)} us (1/{_fmt(c, 2)})"
            ),
        )
    )
    lat = find(rows, "latency", "edge")
    met: bool | None = None
    detail = "n/a"
    if lat is not None and lat.p99_ms is not None:
        kept_up = (lat.deliveries_per_s or 0) >= 0.95 * (lat.offered_per_s or 0)
        met = lat.p99_ms < P99_TARGET_MS and kept_up
        detail = (
            f"p99 {_fmt(lat.p99_ms)} ms at {_fmt(lat.deliveries_per_s, 0)}/s "
            f"of {_fmt(lat.offered_per_s, 0)}/s offered"
        )
    out.append(
        Verdict(
            target=f"p99 < {P99_TARGET_MS:g} ms at {clients_of(rows, 'latency'):,} clients",
            met=met,
            detail=detail,
        )
    )
    idle = find(rows, "idle", "edge")
    k = idle.kib_per_conn if idle else None
    out.append(
        Verdict(
            target=f"<= {KIB_TARGET:g} KiB per idle connection",
            met=None if k is None else k <= KIB_TARGET,
            detail=f"{_fmt(k)} KiB",
        )
    )
    setup = idle.setup_s if idle else None
    out.append(
        Verdict(
            target=f"{clients_of(rows, 'idle'):,} clients welcomed within {SETUP_TARGET_S:g} s",
            met=None
            if setup is None or idle is None
            else setup <= SETUP_TARGET_S and idle.connected == idle.clients,
            detail=f"{_fmt(setup, 2)} s, {idle.connected if idle else 0:,} connected",
        )
    )
    cap = find(rows, "capacity", "edge")
    out.append(
        Verdict(
            target=f"{CAPACITY_TARGET:,} concurrent connections on one edge",
            met=None
            if cap is None
            else (cap.connected or 0) >= CAPACITY_TARGET and cap.silent_clients == 0,
            detail="n/a"
            if cap is None
            else f"{cap.connected or 0:,} connected, {cap.silent_clients} not receiving",
        )
    )
    rs = next((row for row in rows if row.scenario == "restart" and row.target == "edge"), None)
    if rs is None or rs.status != "ok":
        out.append(
            Verdict(
                target="clients back within the drain window after a restart",
                met=None,
                detail=f"{rs.status}: {rs.note}" if rs else "n/a",
            )
        )
    else:
        # the edge spreads its closes over the window, and a client closed at its end still
        # waits its own jitter: the budget is the window plus the clients' jitter
        budget = (rs.drain_window_s or 0) + (rs.jitter_s or 0)
        met = (
            rs.status == "ok"
            and rs.back == rs.clients
            and rs.back_s is not None
            and rs.back_s <= budget
        )
        out.append(
            Verdict(
                target=f"{rs.clients:,} clients back within the drain window after a restart",
                met=met,
                detail=(
                    f"{rs.back or 0:,} back {_fmt(rs.back_s, 2)} s after SIGTERM (window "
                    f"{_fmt(rs.drain_window_s)} s + jitter {_fmt(rs.jitter_s)} s)"
                ),
            )
        )
    return out


_COLUMNS: list[tuple[str, int]] = [
    ("scenario", 20),
    ("target", 7),
    ("clients", 7),
    ("deliv/s", 9),
    ("p50 ms", 7),
    ("p99 ms", 8),
    ("max ms", 8),
    ("app p99", 8),
    ("us/deliv", 8),
    ("srv cpu", 7),
    ("cli cpu", 7),
    ("KiB/conn", 8),
    ("setup s", 7),
]


def _cells(row: Row) -> list[str]:
    def pct(v: float | None) -> str:
        return "" if v is None else f"{v:.0f}%"

    def f(v: float | None, digits: int = 1) -> str:
        return "" if v is None else _fmt(v, digits)

    return [
        SCENARIO_TITLES[row.scenario],
        row.target,
        f"{row.clients:,}",
        f(row.deliveries_per_s, 0),
        f(row.p50_ms),
        f(row.p99_ms),
        f(row.max_ms),
        f(row.app_p99_ms),
        f(row.cpu_us_per_delivery, 2),
        pct(row.server_cpu_pct),
        pct(row.client_cpu_pct),
        f(row.kib_per_conn),
        f(row.setup_s if row.scenario != "restart" else row.back_s, 2),
    ]


def table(rows: Sequence[Row]) -> str:
    header = "  ".join(
        name.rjust(width) if i > 1 else name.ljust(width)
        for i, (name, width) in enumerate(_COLUMNS)
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = _cells(row)
        line = "  ".join(
            cell.rjust(width) if i > 1 else cell.ljust(width)
            for i, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True))
        )
        tail = row.note if row.status == "ok" else f"{row.status.upper()}: {row.note}"
        lines.append(f"{line}  {tail}".rstrip())
    return "\n".join(lines)


def ratios(rows: Sequence[Row]) -> list[str]:
    out = []
    for scenario in ("fanout", "latency"):
        edge = find(rows, scenario, "edge")
        if edge is None:
            continue
        for ref in ("naive", "nats-ws"):
            other = find(rows, scenario, ref)
            if other is None:
                continue
            r = ratio(edge.deliveries_per_s, other.deliveries_per_s)
            c = ratio(other.cpu_us_per_delivery, edge.cpu_us_per_delivery)
            out.append(
                f"{SCENARIO_TITLES[scenario]} at {edge.clients:,} clients: edge/{ref} "
                f"deliveries ratio {_fmt(r, 2)}, {ref}/edge cpu-per-delivery ratio {_fmt(c, 2)}"
            )
    edge = find(rows, "idle", "edge")
    other = find(rows, "idle", "nats-ws")
    if edge is not None and other is not None:
        t = ratio(edge.subscribed_s, other.subscribed_s)
        c = ratio(edge.setup_cpu_us, other.setup_cpu_us)
        out.append(
            f"{SCENARIO_TITLES['idle']} at {edge.clients:,} clients: edge/nats-ws time to all "
            f"subscribed ratio {_fmt(t, 2)}, set-up cpu-per-client ratio {_fmt(c, 2)}"
        )
    return out


def profile_summary(raw: Iterable[str], top: int = 25) -> str:
    """Top functions of a py-spy ``--format raw`` profile (``frame;frame;... count`` lines).

    >>> print(profile_summary(["main;work 3", "main;idle 1"], top=2))
    4 samples
    inclusive:
      100.0%  main
       75.0%  work
    self:
       75.0%  work
       25.0%  idle
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines.append("self:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def summary_line(rows: Sequence[Row]) -> str:
    """The last line `make bench` prints (the issue's format)."""
    e_fan, n_fan = find(rows, "fanout", "edge"), find(rows, "fanout", "naive")
    r = ratio(val(e_fan, "deliveries_per_s"), val(n_fan, "deliveries_per_s"))
    n = clients_of(rows, "fanout")
    lat = find(rows, "latency", "edge")
    idle = find(rows, "idle", "edge")
    return (
        f"bench: edge/naive deliveries ratio {_fmt(r, 2)} at {n} clients; "
        f"p99 {_fmt(val(lat, 'p99_ms'))} ms; "
        f"cpu/delivery {_fmt(val(e_fan, 'cpu_us_per_delivery'), 2)} us; "
        f"{_fmt(val(idle, 'kib_per_conn'))} KiB/conn"
    )
