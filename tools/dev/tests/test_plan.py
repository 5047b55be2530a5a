"""What the launcher starts, on which port, with which environment."""

from __future__ import annotations

import io

import pytest

from pricewire_dev.console import Console, use_color
from pricewire_dev.plan import (
    SERVICES,
    ServicePlan,
    banner_lines,
    child_env,
    plan_services,
)
from pricewire_dev.settings import Providers

PORTS = {s.name: 8100 + s.port_offset for s in SERVICES}
NATS = "nats://127.0.0.1:4222"


def _plan(
    providers: Providers, runnable: set[str] | None = None
) -> tuple[list[ServicePlan], list[str]]:
    exists = runnable if runnable is not None else {s.module for s in SERVICES}
    started, missing = plan_services(
        providers=providers,
        ports=PORTS,
        nats_url=NATS,
        log_file="/repo/logs/app.log",
        runnable=exists.__contains__,
    )
    return started, [s.name for s in missing]


def test_the_ports_follow_the_architecture_page() -> None:
    assert PORTS == {
        "ws-edge": 8101,
        "session-registry": 8102,
        "stats": 8103,
        "market-ingest": 8104,
        "simulator": 8105,
    }


@pytest.mark.parametrize(
    ("providers", "names"),
    [
        ("live", ["session-registry", "stats", "market-ingest", "ws-edge"]),
        ("simulated", ["simulator", "session-registry", "stats", "market-ingest", "ws-edge"]),
    ],
)
def test_simulated_providers_add_the_simulator_before_ingest(
    providers: Providers, names: list[str]
) -> None:
    started, missing = _plan(providers)
    assert [p.name for p in started] == names
    assert missing == []


def test_every_service_gets_its_port_instance_and_the_shared_settings() -> None:
    started, _ = _plan("live")
    edge = next(p for p in started if p.name == "ws-edge")
    assert edge.port == 8101
    assert dict(edge.env) == {
        "PRICEWIRE_HOST": "127.0.0.1",
        "PRICEWIRE_PORT": "8101",
        "PRICEWIRE_NATS_URL": NATS,
        "PRICEWIRE_INSTANCE_ID": "edge-1",
        "PRICEWIRE_LOG_FORMAT": "console",
        "PRICEWIRE_LOG_FILE": "/repo/logs/app.log",
        "PRICEWIRE_DEV_MODE": "true",
    }
    assert len({p.env["PRICEWIRE_INSTANCE_ID"] for p in started}) == len(started)


@pytest.mark.parametrize(
    ("providers", "override"),
    [("simulated", "http://127.0.0.1:8105"), ("live", None)],
)
def test_only_simulated_ingest_is_pointed_at_the_simulator(
    providers: Providers, override: str | None
) -> None:
    started, _ = _plan(providers)
    ingest = next(p for p in started if p.name == "market-ingest")
    assert ingest.env.get("PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE") == override
    others = [p for p in started if p.name != "market-ingest"]
    assert all("PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE" not in p.env for p in others)


def test_services_whose_package_cannot_run_are_reported_not_started() -> None:
    started, missing = _plan("simulated", {"pricewire_edge", "pricewire_registry"})
    assert [p.name for p in started] == ["session-registry", "ws-edge"]
    assert missing == ["simulator", "stats", "market-ingest"]


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        # nothing set by the user: the launcher's values
        ({"PATH": "/bin"}, {"PATH": "/bin", "PRICEWIRE_LOG_FORMAT": "console"}),
        # the user's own settings win
        ({"PRICEWIRE_LOG_FORMAT": "json"}, {"PRICEWIRE_LOG_FORMAT": "json"}),
        ({"PRICEWIRE_HEARTBEAT_INTERVAL_S": "5"}, {"PRICEWIRE_HEARTBEAT_INTERVAL_S": "5"}),
        ({"PYTHONUNBUFFERED": ""}, {"PYTHONUNBUFFERED": ""}),
        # per-process values stay the launcher's
        ({"PRICEWIRE_PORT": "9999"}, {"PRICEWIRE_PORT": "8101"}),
        ({"PRICEWIRE_INSTANCE_ID": "mine"}, {"PRICEWIRE_INSTANCE_ID": "edge-1"}),
        ({"PRICEWIRE_NATS_URL": "nats://elsewhere:4222"}, {"PRICEWIRE_NATS_URL": NATS}),
    ],
)
def test_child_env_passes_the_users_settings_through_except_per_process_ones(
    user: dict[str, str], expected: dict[str, str]
) -> None:
    launcher = {
        "PRICEWIRE_PORT": "8101",
        "PRICEWIRE_INSTANCE_ID": "edge-1",
        "PRICEWIRE_NATS_URL": NATS,
        "PRICEWIRE_LOG_FORMAT": "console",
    }
    env = child_env(user, launcher)
    for key, value in expected.items():
        assert env[key] == value
    assert "PYTHONUNBUFFERED" in env


def test_banner_lists_the_guides_urls_on_one_origin() -> None:
    started, _ = _plan("simulated")
    text = "\n".join(
        banner_lines(
            port=8000,
            providers="simulated",
            services=started,
            missing=[],
            nats_port=4222,
            nats_monitor_port=8222,
            log_file="logs/app.log",
        )
    )
    for expected in (
        "http://localhost:8000/",
        "http://localhost:8000/test_websocket.html",
        "ws://localhost:8000/ws",
        "http://localhost:8000/api/sessions",
        "http://localhost:8000/docs",
        "http://127.0.0.1:8101/metrics",
        "http://127.0.0.1:8105/metrics",
        "nats://127.0.0.1:4222",
        "http://127.0.0.1:8222/",
        "tail -f logs/app.log",
    ):
        assert expected in text
    assert "not started" not in text


def test_banner_names_what_is_missing_and_omits_its_urls() -> None:
    started, _ = _plan("live", {"pricewire_registry"})
    _, missing = plan_services(
        providers="live",
        ports=PORTS,
        nats_url=NATS,
        log_file="x",
        runnable={"pricewire_registry"}.__contains__,
    )
    text = "\n".join(
        banner_lines(
            port=8000,
            providers="live",
            services=started,
            missing=missing,
            nats_port=4222,
            nats_monitor_port=8222,
            log_file="logs/app.log",
        )
    )
    assert "ws://localhost:8000/ws" not in text
    assert "http://localhost:8000/api/sessions" in text
    assert "not started (package has no __main__ yet): stats, market-ingest, ws-edge" in text


@pytest.mark.parametrize(
    ("environ", "tty", "expected"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"FORCE_COLOR": "1"}, False, True),
    ],
)
def test_colour_only_on_a_terminal_unless_told(
    environ: dict[str, str], tty: bool, expected: bool
) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert use_color(Stream(), environ) is expected


def test_console_prefixes_each_line_with_the_padded_name() -> None:
    out = io.StringIO()
    console = Console(out, color=False, name_width=8)
    console.line("stats", "yellow", "hello")
    assert out.getvalue() == "stats    | hello\n"
    painted = io.StringIO()
    Console(painted, color=True, name_width=8).line("stats", "yellow", "hello")
    assert painted.getvalue() == "\x1b[33mstats    |\x1b[0m hello\n"
