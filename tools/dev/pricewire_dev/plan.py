"""What the launcher starts, on which ports, with which environment: decisions, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .settings import Providers

__all__ = [
    "LAUNCHER_OWNED",
    "SERVICES",
    "SIMULATOR_VENUES",
    "SIMULATOR_VENUES_OFFSET",
    "ServicePlan",
    "ServiceSpec",
    "banner_lines",
    "child_env",
    "plan_services",
]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    module: str
    port_offset: int
    instance_id: str
    color: str
    simulated_only: bool = False


# Listed in start order: the simulator is up before ingest polls it.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("simulator", "pricewire_ingest.simulator", 5, "simulator-1", "white", True),
    ServiceSpec("session-registry", "pricewire_registry", 2, "registry-1", "magenta"),
    ServiceSpec("stats", "pricewire_stats", 3, "stats-1", "yellow"),
    ServiceSpec("market-ingest", "pricewire_ingest", 4, "ingest-1", "blue"),
    ServiceSpec("ws-edge", "pricewire_edge", 1, "edge-1", "green"),
)
EDGE = "ws-edge"
REGISTRY = "session-registry"
SIMULATOR = "simulator"
#: the simulated exchanges' WebSocket venues (one port, one path per venue), served by the
#: simulator process on a port of their own
SIMULATOR_VENUES = "simulator-venues"
SIMULATOR_VENUES_OFFSET = 6
INGEST = "market-ingest"

# Per-process values the launcher must decide: a user's PRICEWIRE_PORT would give every
# service the same port. Everything else the user exports wins over the launcher's default.
LAUNCHER_OWNED = frozenset({"PRICEWIRE_PORT", "PRICEWIRE_NATS_URL", "PRICEWIRE_INSTANCE_ID"})


@dataclass(frozen=True, slots=True)
class ServicePlan:
    spec: ServiceSpec
    port: int
    env: Mapping[str, str]  # the PRICEWIRE_* values the launcher sets for this process

    @property
    def name(self) -> str:
        return self.spec.name


def plan_services(
    *,
    providers: Providers,
    ports: Mapping[str, int],
    nats_url: str,
    log_file: str,
    runnable: Callable[[str], bool],
    services: tuple[ServiceSpec, ...] = SERVICES,
) -> tuple[list[ServicePlan], list[ServiceSpec]]:
    """The services to start (in start order) and those whose package cannot run yet."""
    wanted = [s for s in services if providers == "simulated" or not s.simulated_only]
    started: list[ServicePlan] = []
    missing: list[ServiceSpec] = []
    for spec in wanted:
        if not runnable(spec.module):
            missing.append(spec)
            continue
        env = {
            "PRICEWIRE_HOST": "127.0.0.1",
            "PRICEWIRE_PORT": str(ports[spec.name]),
            "PRICEWIRE_NATS_URL": nats_url,
            "PRICEWIRE_INSTANCE_ID": spec.instance_id,
            "PRICEWIRE_LOG_FORMAT": "console",
            "PRICEWIRE_LOG_FILE": log_file,
            "PRICEWIRE_DEV_MODE": "true",
        }
        if spec.name == INGEST and providers == "simulated" and SIMULATOR in ports:
            env["PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE"] = f"http://127.0.0.1:{ports[SIMULATOR]}"
            # the demo shows keyed providers too, with a placeholder key the simulator accepts
            env["PRICEWIRE_SIMULATED_KEYS"] = "true"
            if SIMULATOR_VENUES in ports:
                # stream from the simulated venues (make run: the venues' public endpoints)
                env["PRICEWIRE_STREAM_BASE_URL_OVERRIDE"] = (
                    f"ws://127.0.0.1:{ports[SIMULATOR_VENUES]}"
                )
        if spec.name == INGEST:
            env["PRICEWIRE_STREAM_ENABLED"] = "true"
        if spec.name == SIMULATOR:
            if SIMULATOR_VENUES in ports:
                env["PRICEWIRE_SIM_VENUES_PORT"] = str(ports[SIMULATOR_VENUES])
            # a few providers misbehave, so the demo's provider health is not all green
            env["PRICEWIRE_SIM_FAULT_FRACTION"] = "0.05"
        started.append(ServicePlan(spec, ports[spec.name], env))
    return started, missing


def child_env(user_env: Mapping[str, str], launcher_env: Mapping[str, str]) -> dict[str, str]:
    """The user's environment, the launcher's values where the user set none.

    ``PYTHONUNBUFFERED`` makes a child's lines reach the launcher's console as they happen
    rather than when a pipe buffer fills.
    """
    env = dict(user_env)
    for key, value in {**launcher_env, "PYTHONUNBUFFERED": "1"}.items():
        if key in LAUNCHER_OWNED or key not in user_env:
            env[key] = value
    return env


def banner_lines(
    *,
    port: int,
    providers: Providers,
    services: list[ServicePlan],
    missing: list[ServiceSpec],
    nats_port: int,
    nats_monitor_port: int,
    log_file: str,
) -> list[str]:
    """What the user reads once everything answered ready."""
    origin = f"localhost:{port}"
    running = {p.name for p in services}
    lines = [f"Pricewire is up on http://{origin}/ ({providers} providers)", ""]
    rows: list[tuple[str, str]] = []
    if EDGE in running:
        rows += [
            ("dashboard", f"http://{origin}/"),
            ("test page", f"http://{origin}/test_websocket.html"),
            ("WebSocket", f"ws://{origin}/ws"),
        ]
    if REGISTRY in running:
        rows += [("REST", f"http://{origin}/api/sessions"), ("API docs", f"http://{origin}/docs")]
    for plan in sorted(services, key=lambda p: p.port):
        rows.append((f"metrics {plan.name}", f"http://127.0.0.1:{plan.port}/metrics"))
    rows += [
        ("NATS", f"nats://127.0.0.1:{nats_port}"),
        ("NATS monitoring", f"http://127.0.0.1:{nats_monitor_port}/"),
        ("logs", f"tail -f {log_file}"),
    ]
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label:<{width}}  {url}" for label, url in rows]
    if missing:
        names = ", ".join(s.name for s in missing)
        lines += ["", f"  not started (package has no __main__ yet): {names}"]
    lines += ["", "Ctrl-C stops everything."]
    return lines
