"""``python -m pricewire_dev run --providers live|simulated --port 8000``: see ``launcher``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pricewire_common.logs import setup_logging

from .launcher import Launcher
from .settings import LauncherSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pricewire_dev",
        description="Pricewire's development tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="nats-server, every service and the dev gateway; Ctrl-C stops them all",
        description=(
            "Start nats-server (JetStream, store in <run-dir>/nats), every service that exists "
            "as its own process, and the dev gateway on --port, which routes /api, /docs, "
            "/redoc and /openapi.json to session-registry and everything else to ws-edge."
        ),
    )
    # Defaults are None so that PRICEWIRE_DEV_* and LauncherSettings supply them.
    run.add_argument("--providers", choices=["live", "simulated"], help="default: live")
    run.add_argument("--port", type=int, help="dev gateway port (default 8000)")
    run.add_argument("--host", help="dev gateway bind address (default 127.0.0.1)")
    run.add_argument(
        "--ports-from",
        type=int,
        metavar="N",
        help="services on N+1 (ws-edge), N+2 (registry), N+3 (stats), N+4 (ingest), "
        "N+5 (simulator); default 8100",
    )
    run.add_argument("--nats-port", type=int, help="default 4222 (a free port if taken)")
    run.add_argument("--nats-monitor-port", type=int, help="default 8222 (a free port if taken)")
    run.add_argument("--run-dir", type=Path, help="nats-server's store and the lock (default .run)")
    run.add_argument("--log-file", type=Path, help="every process appends here (logs/app.log)")
    run.add_argument("--ready-timeout", type=float, dest="ready_timeout_s", metavar="SECONDS")
    run.add_argument("--stop-timeout", type=float, dest="stop_timeout_s", metavar="SECONDS")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    given: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    given.pop("command")
    settings = LauncherSettings(**given)
    fmt = os.environ.get("PRICEWIRE_LOG_FORMAT", "console")
    setup_logging(
        "launcher",
        level=os.environ.get("PRICEWIRE_LOG_LEVEL", "INFO"),
        fmt=fmt if fmt in ("auto", "json", "console") else "console",
        file=str(settings.log_file),
    )
    # The stdlib loop, not uvloop: it runs the children's preexec_fn and process_group as
    # subprocess.Popen documents them, and the launcher is no hot path.
    return asyncio.run(Launcher(settings).run())


if __name__ == "__main__":
    sys.exit(main())
